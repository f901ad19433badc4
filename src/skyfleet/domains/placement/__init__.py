"""Placement: where a tenant's servers can run (locations) and where they should (ranked candidates)."""
