"""Run Alembic migrations programmatically (``skyfleet db upgrade`` and server start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from skyfleet.db.engine import prepare_sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision`` (default: every head, as features add branches)."""
    prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)
