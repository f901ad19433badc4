"""The data directory, the SQLite database and the key file are private to Skyfleet's user."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.engine import make_engine
from skyfleet.secrets import load_keys


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    """A umask that would leave files world-readable unless Skyfleet asks for less."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sqlite_database_and_its_new_directory_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "data"
    url = f"sqlite:///{data_dir / 'skyfleet.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))
        assert _mode(data_dir / "skyfleet.db") == 0o600
        assert _mode(data_dir / "skyfleet.db-wal") == 0o600
    engine.dispose()
    assert _mode(data_dir) == 0o700 and _mode(tmp_path / "var") == 0o700


def test_key_file_and_data_dir_are_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh", auth_mode="noauth")
    load_keys(settings)
    assert _mode(settings.key_file) == 0o600
    assert _mode(settings.data_dir) == 0o700


def test_an_existing_data_dir_keeps_the_operators_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o750)
    load_keys(Settings(data_dir=shared, auth_mode="noauth"))
    assert _mode(shared) == 0o750 and _mode(shared / "fernet.keys") == 0o600
