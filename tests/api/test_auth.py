"""Authentication and the admin/tenant split, with a scripted token validator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from skyfleet.errors import Unauthorized
from tests.conftest import make_settings
from tests.support import FakeProber, site_body

ADMIN = Principal(user_id="u1", user_name="alice", project_id="p-admin", project_name="admin",
                  roles=("admin",), is_admin=True)
TENANT = Principal(user_id="u2", user_name="bob", project_id="p-demo", project_name="demo",
                   roles=("member",), is_admin=False)


class FakeValidator:
    def __init__(self) -> None:
        self.tokens = {"admin-token": ADMIN, "tenant-token": TENANT}

    def validate(self, token: str) -> Principal:
        if token not in self.tokens:
            raise Unauthorized("the token is invalid or expired")
        return self.tokens[token]


@pytest.fixture
def keystone_runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = make_settings(tmp_path, auth_mode="keystone", home_auth_url="http://home.example.test/v3",
                             home_username="svc", home_password="svc-pass")
    rt = build_runtime(settings, prober=FakeProber())
    rt.validator = FakeValidator()  # type: ignore[assignment]
    yield rt
    rt.close()


@pytest.fixture
def kclient(keystone_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(keystone_runtime, start_workers=False)) as c:
        yield c


def test_public_paths_need_no_token(kclient: TestClient) -> None:
    for path in ("/", "/healthz", "/openapi.json", "/docs"):
        assert kclient.get(path).status_code == 200, path


def test_missing_or_bad_token_is_401(kclient: TestClient) -> None:
    response = kclient.get("/v1/sites")
    assert response.status_code == 401 and "X-Auth-Token" in response.json()["detail"]
    assert kclient.get("/v1/events", headers={"X-Auth-Token": "nope"}).status_code == 401


def test_admin_manages_sites_tenant_gets_403_with_reason(kclient: TestClient) -> None:
    admin = {"X-Auth-Token": "admin-token"}
    tenant = {"X-Auth-Token": "tenant-token"}
    assert kclient.post("/v1/sites", json=site_body("a"), headers=admin).status_code == 201
    for method, path in (("GET", "/v1/sites"), ("GET", "/v1/sites/a"), ("POST", "/v1/sites"),
                         ("PATCH", "/v1/sites/a"), ("DELETE", "/v1/sites/a"), ("POST", "/v1/sites/a/unmanage")):
        response = kclient.request(method, path, headers=tenant, json=site_body("b") if method != "GET" else None)
        assert response.status_code == 403, (method, path)
        assert "fleet admins" in response.json()["detail"] and "demo" in response.json()["detail"]


def test_tenant_sees_only_its_projects_events(kclient: TestClient, keystone_runtime: Runtime) -> None:
    with transaction(keystone_runtime.factory) as session:
        events.record(session, kind="quota.breach", message="mine", project_id="p-demo")
        events.record(session, kind="quota.breach", message="theirs", project_id="p-other")
    kclient.post("/v1/sites", json=site_body("a"), headers={"X-Auth-Token": "admin-token"})
    tenant_view = kclient.get("/v1/events", headers={"X-Auth-Token": "tenant-token"}).json()["events"]
    assert [e["message"] for e in tenant_view] == ["mine"]
    admin_view = kclient.get("/v1/events", headers={"X-Auth-Token": "admin-token"}).json()["events"]
    assert {e["message"] for e in admin_view} >= {"mine", "theirs", "site a registered"}
