"""Drivers: the only code that talks to sites. Never imports domains, db or the API."""
