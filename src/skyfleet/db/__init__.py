"""Database access: engine and session factory, declarative base, migrations."""
