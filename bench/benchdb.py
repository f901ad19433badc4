"""Throwaway databases for the benchmarks that compare the embedded default with PostgreSQL.

Each yields a label and a URL: a SQLite file in a temporary directory, and/or a new database on the
local PostgreSQL (``SKYFLEET_TEST_PG``, default postgres@127.0.0.1:5432), dropped afterwards even
when the run fails.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable

PG_ADMIN_URL = os.environ.get("SKYFLEET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_on(choice: str, run: Callable[[str, str], None]) -> None:
    """Call ``run(label, url)`` on SQLite, PostgreSQL or both (``choice``: sqlite, postgresql, both)."""
    if choice in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.db")
    if choice in ("postgresql", "both"):
        import psycopg

        name = f"skyfleet_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            run("postgresql", f"{base}/{name}")
        finally:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
