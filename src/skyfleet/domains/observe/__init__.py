"""Observe: the fleet's state summed up for metrics, read from the store at scrape time."""
