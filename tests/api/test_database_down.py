"""A database that cannot be reached answers 503 with a reason, never 500."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

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
    runtime.close()
