"""Desired keypairs, flavors and security groups, their placement and per-site bindings."""
