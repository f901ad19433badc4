"""Tenant networks declared once and made in every placed site, numbered from an address pool."""
