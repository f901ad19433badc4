"""A database that cannot be reached answers 503 with a reason, never 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from skyfleet.api.app import create_app
from skyfleet.api.runtime import build_runtime
from tests.conftest import make_settings
from tests.support import site_body


def test_unreachable_postgres_gives_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                             auto_migrate=False)
    runtime = build_runtime(settings)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        response = client.get("/v1/sites")
        assert response.status_code == 503
        assert response.json()["detail"] == "the database is unavailable; retry shortly"
        assert response.headers["Retry-After"] == "5"
        assert client.post("/v1/sites", json=site_body("x")).status_code == 503
        assert client.get("/healthz").status_code == 503
        assert client.get("/metrics").status_code == 503
        assert client.get("/v1/events/stream").status_code == 503
    runtime.close()


def test_a_stream_whose_database_goes_away_ends_cleanly(tmp_path: Path) -> None:
    """The answer has started: no error status is possible, so the stream says why and ends (the
    client resumes with Last-Event-ID), instead of a crashed response and a trace in the log."""
    from skyfleet.api.event_stream import event_lines

    calls: list[int] = []

    def poll(after: int) -> list[Any]:
        calls.append(after)
        if len(calls) > 1:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return []

    async def read() -> list[str]:
        return [part async for part in event_lines(poll, after=7, seconds=10, poll_every=0.01, heartbeat=60)]

    parts = anyio.run(read)
    assert parts[-1].startswith(": database unavailable") and calls == [7, 7]
