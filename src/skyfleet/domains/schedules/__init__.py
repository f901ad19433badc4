"""Schedules: periodic jobs claimed in the database so they run once per interval fleet-wide."""
