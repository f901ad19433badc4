"""Fixtures shared by every tier: settings, databases (SQLite and PostgreSQL), runtimes, API clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.config import Settings
from tests.support import FakeProber

PG_ADMIN_URL = os.environ.get("SKYFLEET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL of the test PostgreSQL; CI fails (not skips) when it is missing."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    yield PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"skyfleet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'skyfleet.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # TestClient sends Host "testserver": name it a local host, as /etc/hosts would (docs/configuration.md).
    values: dict[str, Any] = {"data_dir": tmp_path, "auth_mode": "noauth", "audit_interval": 3600,
                              "site_timeout": 5, "noauth_allowed_hosts": "testserver",
                              # a live event stream ends by itself: TestClient reads a response to its end
                              "events_stream_max_seconds": 2, "events_stream_poll_seconds": 0.1}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def prober() -> FakeProber:
    return FakeProber()


@pytest.fixture
def runtime_factory(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def build(db: str | None = None, prober: Any = None, **overrides: Any) -> Runtime:
        settings = make_settings(tmp_path, database_url=db or "", **overrides)
        rt = build_runtime(settings, prober=prober)
        made.append(rt)
        return rt

    yield build
    for rt in made:
        rt.close()


@pytest.fixture
def runtime(runtime_factory: Callable[..., Runtime], db_url: str, prober: FakeProber) -> Runtime:
    return runtime_factory(db_url, prober)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, start_workers=False)) as test_client:
        yield test_client
