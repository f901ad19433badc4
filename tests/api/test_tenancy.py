"""A tenant acts only as itself: what only admins may ask for, what tenants may read, and the
limits on what an unauthenticated or tenant caller can make the server do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.deps import get_principal
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sync.models import SyncResource
from skyfleet.logs import SECRETS
from tests.conftest import make_settings
from tests.engine_support import PUBLIC_KEY
from tests.support import ADMIN, TENANT, FakeProber, site_body

OTHER = Principal(user_id="o", user_name="olga", project_id="p2", project_name="p2", roles=("member",))
READER = Principal(user_id="r", user_name="rita", project_id="p1", project_name="p1", roles=("reader",),
                   read_only=True)
UNSCOPED = Principal(user_id="n", user_name="nobody", project_id=None, project_name=None, roles=())


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(tmp_path, fanout_burst=3, fanout_rate=0.01), prober=FakeProber())
    yield runtime
    runtime.close()


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_workers=False)) as client:
        assert client.post("/v1/sites", json=site_body("s1")).status_code == 201
        yield client


def call(api: TestClient, who: Principal, method: str, path: str, **kwargs: Any) -> Any:
    """One request as ``who`` (the access decision still runs: only the identity is replaced)."""
    api.app.dependency_overrides[get_principal] = lambda: who  # type: ignore[attr-defined]
    try:
        return api.request(method, path, **kwargs)
    finally:
        api.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def test_an_unscoped_role_less_token_declares_nothing(api: TestClient, rt: Runtime) -> None:
    for path, spec in (("/v1/security-groups", {"name": "open", "rules": [{"remote_ip_prefix": "0.0.0.0/0"}]}),
                       ("/v1/keypairs", {"name": "k", "public_key": PUBLIC_KEY})):
        refused = call(api, UNSCOPED, "POST", path, json={"spec": spec})
        assert refused.status_code == 403 and "not scoped to a project" in refused.json()["detail"]
    with transaction(rt.factory) as session:
        assert list(session.scalars(select(SyncResource))) == []


def test_a_readers_token_reads_but_changes_nothing(api: TestClient) -> None:
    assert call(api, TENANT, "POST", "/v1/keypairs", json={"spec": {"name": "k", "public_key": PUBLIC_KEY}}
                ).status_code == 202
    assert [r["name"] for r in call(api, READER, "GET", "/v1/keypairs").json()["resources"]] == ["k"]
    for method, path, body in (("POST", "/v1/keypairs", {"spec": {"name": "k2", "public_key": PUBLIC_KEY}}),
                               ("PATCH", "/v1/keypairs/k", {"force": True}), ("DELETE", "/v1/keypairs/k", None)):
        refused = call(api, READER, method, path, json=body)
        assert refused.status_code == 403 and "reader" in refused.json()["detail"], (method, refused.text)


def test_owner_site_and_purge_are_for_fleet_admins(api: TestClient, rt: Runtime) -> None:
    body = {"spec": {"name": "svc", "public_key": PUBLIC_KEY}, "owner": "site", "force": True}
    refused = call(api, TENANT, "POST", "/v1/keypairs", json=body)
    assert refused.status_code == 403 and "owner 'site'" in refused.json()["detail"]
    assert call(api, TENANT, "POST", "/v1/keypairs", json={"spec": {"name": "mine", "public_key": PUBLIC_KEY}}
                ).status_code == 202
    purge = call(api, TENANT, "DELETE", "/v1/keypairs/mine", params={"purge": "true"})
    assert purge.status_code == 403 and "purge" in purge.json()["detail"]
    assert call(api, ADMIN, "POST", "/v1/keypairs", json=body).status_code == 202
    with transaction(rt.factory) as session:
        payloads = {t.payload["name"]: t.payload for t in session.scalars(select(Task))}
    assert payloads["svc"]["site_scope"] is True and "user" not in payloads["svc"]
    assert payloads["mine"]["user"]["id"] == TENANT.user_id and not payloads["mine"].get("site_scope")


def test_tenants_copy_no_flavor_through_kingbird_and_see_no_flavor_details(api: TestClient) -> None:
    assert api.post("/v1/sites", json=site_body("s2")).status_code == 201
    sets = {"resource_set": {"resource_type": "flavor", "resources": ["m1.secret"], "source": "s1",
                             "target": ["s2"]}}
    refused = call(api, TENANT, "POST", f"/v1.0/{TENANT.project_id}/os-sync", json=sets)
    assert refused.status_code == 403 and "flavors" in refused.json()["detail"]
    private = {"name": "gpu", "vcpus": 8, "ram": 1024, "is_public": False, "extra_specs": {"pci:alias": "a100:1"},
               "access": [{"id": "p2"}]}
    assert call(api, ADMIN, "POST", "/v1/flavors", json={"spec": private}).status_code == 202
    assert call(api, ADMIN, "POST", "/v1/flavors", json={"spec": {"name": "small", "vcpus": 1, "ram": 64,
                                                                  "extra_specs": {"hw:cpu": "x"}}}).status_code == 202
    seen = call(api, TENANT, "GET", "/v1/flavors").json()["resources"]
    assert [f["name"] for f in seen] == ["small"]  # the private flavor is p2's only
    assert "extra_specs" not in seen[0]["spec"] and "access" not in seen[0]["spec"]
    assert call(api, TENANT, "GET", "/v1/flavors/gpu").status_code == 404
    granted = call(api, OTHER, "GET", "/v1/flavors/gpu")
    assert granted.status_code == 200 and "a100" not in granted.text and "access" not in granted.json()["spec"]
    assert "a100" in call(api, ADMIN, "GET", "/v1/flavors/gpu").text


def test_fan_out_requests_are_rate_limited_per_caller(api: TestClient) -> None:
    statuses = [call(api, TENANT, "POST", "/v1/keypairs",
                     json={"spec": {"name": f"k{i}", "public_key": PUBLIC_KEY}}).status_code for i in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    limited = call(api, TENANT, "POST", "/v1/keypairs", json={"spec": {"name": "k9", "public_key": PUBLIC_KEY}})
    assert int(limited.headers["Retry-After"]) >= 1 and "retry in" in limited.json()["detail"]
    # another caller has its own budget; admins are not limited; reads are not fan-out
    assert call(api, OTHER, "POST", "/v1/keypairs", json={"spec": {"name": "k", "public_key": PUBLIC_KEY}}
                ).status_code == 202
    assert all(call(api, ADMIN, "POST", "/v1/keypairs", json={"spec": {"name": f"a{i}", "public_key": PUBLIC_KEY}}
                    ).status_code == 202 for i in range(5))
    assert call(api, TENANT, "GET", "/v1/keypairs").status_code == 200
    live = call(api, TENANT, "GET", "/v1/inventory/servers", params={"live": "true", "site": "s1"})
    assert live.status_code == 429


def test_tenants_name_no_other_project(api: TestClient) -> None:
    for path in (f"/v1/quotas/{OTHER.project_id}", f"/v1/projects/{OTHER.project_id}/mappings",
                 f"/v1.0/{OTHER.project_id}/os-sync", f"/v1.0/{TENANT.project_id}/os-quota-sets/{OTHER.project_id}"):
        refused = call(api, TENANT, "GET", path)
        # a Kingbird URL whose tenant is not a project id at all is a bad URL, as in Kingbird
        assert refused.status_code == (400 if path.startswith(f"/v1.0/{OTHER.project_id}/") else 403), path
        assert OTHER.project_id not in refused.json()["detail"]
    assert call(api, TENANT, "GET", "/v1/inventory/servers", params={"project": "p2"}).status_code == 403


def test_random_tokens_grow_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, auth_mode="keystone", home_auth_url="http://127.0.0.1:9/v3",
                             home_username="svc", home_password="svc-pass", site_timeout=0.2)
    runtime = build_runtime(settings, prober=FakeProber())
    try:
        with TestClient(create_app(runtime, start_workers=False)) as client:
            before = len(SECRETS._values)
            for i in range(50):
                client.get("/v1/events", headers={"X-Auth-Token": f"made-up-token-{i:04d}"})
            assert len(SECRETS._values) == before  # no token ever enters the redaction set
            huge = client.get("/v1/events", headers={"X-Auth-Token": "x" * 16_384})
            assert huge.status_code == 401  # refused without asking Keystone
            assert client.get("/healthz", headers={"X-Auth-Token": "x" * 16_384}).status_code == 200
    finally:
        runtime.close()
    assert "made-up-token" not in caplog.text
