"""Declared identity: projects, users, groups and role assignments provisioned into every placed site."""
