"""The sync API's rules without any site call: who may declare what, tenant isolation, validation
(4xx with the reason), placement, the per-site payload (keypair owner, project), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.errors import Unauthorized
from tests.conftest import make_settings
from tests.engine_support import PUBLIC_KEY
from tests.support import FakeProber, site_body

ADMIN = Principal(user_id="u1", user_name="alice", project_id="p-admin", project_name="admin",
                  roles=("admin",), is_admin=True)
BOB = Principal(user_id="u2", user_name="bob", project_id="p-demo", project_name="demo", roles=("member",))
EVE = Principal(user_id="u3", user_name="eve", project_id="p-other", project_name="other", roles=("member",))


class FakeValidator:
    tokens = {"admin": ADMIN, "bob": BOB, "eve": EVE}

    def validate(self, token: str) -> Principal:
        if token not in self.tokens:
            raise Unauthorized("the token is invalid or expired")
        return self.tokens[token]


@pytest.fixture
def rt(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    settings = make_settings(tmp_path, database_url=db_url, auth_mode="keystone",
                             home_auth_url="http://home.example.test/v3", home_username="svc", home_password="pw")
    runtime = build_runtime(settings, prober=FakeProber())
    runtime.validator = FakeValidator()  # type: ignore[assignment]
    yield runtime
    runtime.close()


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_workers=False)) as client:
        for name, labels in (("edge-1", {"tier": "edge"}), ("core-1", {"tier": "core"})):
            assert client.post("/v1/sites?probe=false", json=site_body(name, labels=labels),
                               headers={"X-Auth-Token": "admin"}).status_code == 201
        yield client


def as_(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def test_tenants_see_only_their_resources_and_flavors_are_for_admins(api: TestClient) -> None:
    made = api.post("/v1/keypairs", json={"spec": {"name": "k", "public_key": PUBLIC_KEY}}, headers=as_("bob"))
    assert made.status_code == 202, made.text
    assert made.json()["project_id"] == "p-demo"
    assert {b["status"] for b in made.json()["bindings"]} == {"pending"}
    assert api.get("/v1/keypairs/k", headers=as_("eve")).status_code == 404
    assert api.get("/v1/keypairs", headers=as_("eve")).json()["resources"] == []
    assert api.delete("/v1/keypairs/k", headers=as_("eve")).status_code == 404
    assert [r["name"] for r in api.get("/v1/keypairs", headers=as_("admin")).json()["resources"]] == ["k"]
    # eve may use the same name in her own project
    assert api.post("/v1/keypairs", json={"spec": {"name": "k", "public_key": PUBLIC_KEY}},
                    headers=as_("eve")).status_code == 202
    denied = api.post("/v1/flavors", json={"spec": {"name": "f", "vcpus": 1, "ram": 64}}, headers=as_("bob"))
    assert denied.status_code == 403 and "fleet admins" in denied.json()["detail"]
    assert api.post("/v1/flavors", json={"spec": {"name": "f", "vcpus": 1, "ram": 64}},
                    headers=as_("admin")).status_code == 202
    assert api.patch("/v1/flavors/f", json={"replace": True}, headers=as_("bob")).status_code == 403
    assert [r["name"] for r in api.get("/v1/flavors", headers=as_("bob")).json()["resources"]] == ["f"]
    assert api.get("/v1/keypairs", headers={"X-Auth-Token": "nope"}).status_code == 401


def test_keypair_copy_is_owned_by_the_caller_and_groups_by_the_callers_project(api: TestClient,
                                                                               rt: Runtime) -> None:
    kp = api.post("/v1/keypairs", json={"spec": {"name": "mine", "public_key": PUBLIC_KEY},
                                        "placement": {"selector": "tier=edge"}}, headers=as_("bob")).json()
    refused = api.post("/v1/keypairs", json={"spec": {"name": "svc", "public_key": PUBLIC_KEY}, "owner": "site"},
                       headers=as_("bob"))
    assert refused.status_code == 403 and "fleet admins" in refused.json()["detail"]
    site_key = api.post("/v1/keypairs", json={"spec": {"name": "svc", "public_key": PUBLIC_KEY}, "owner": "site"},
                        headers=as_("admin")).json()
    sg = api.post("/v1/security-groups", json={"spec": {"name": "web"}}, headers=as_("bob")).json()
    with transaction(rt.factory) as session:
        tasks = {t.operation_id: t for t in session.scalars(select(Task))}
        assert [t.site_name for t in session.scalars(select(Task).where(Task.operation_id == kp["operation_id"]))] \
            == ["edge-1"]
        assert tasks[kp["operation_id"]].payload["user"] == {"id": "u2", "name": "bob", "domain_name": "Default"}
        assert not tasks[kp["operation_id"]].payload.get("site_scope")
        assert "user" not in tasks[site_key["operation_id"]].payload
        assert tasks[site_key["operation_id"]].payload["site_scope"] is True
        assert tasks[sg["operation_id"]].payload["project"] == {"id": "p-demo", "name": "demo",
                                                                "domain_name": "Default"}
        assert not tasks[sg["operation_id"]].payload.get("site_scope")


def test_bad_input_is_4xx_with_the_reason(api: TestClient) -> None:
    h = as_("admin")
    cases = [
        ("/v1/keypairs", {"spec": {"name": "k", "public_key": "short"}}, 400, "public_key"),
        ("/v1/keypairs", {"spec": {"name": "k"}}, 400, "public_key"),
        ("/v1/flavors", {"spec": {"name": "f", "vcpus": 0, "ram": 64}}, 400, "vcpus"),
        ("/v1/flavors", {"spec": {"name": "f", "vcpus": 1, "ram": 64, "colour": "red"}}, 400, "colour"),
        ("/v1/security-groups", {"spec": {"name": "g", "rules": [{"direction": "sideways"}]}}, 400, "direction"),
        ("/v1/keypairs", {"spec": {"name": "k", "public_key": PUBLIC_KEY}, "placement": {"sites": ["nowhere"]}},
         400, "nowhere"),
        ("/v1/keypairs", {"spec": {"name": "k", "public_key": PUBLIC_KEY},
                          "placement": {"sites": ["edge-1"], "group": "eu"}}, 422, "at most one"),
        ("/v1/keypairs", {"spec": {"name": "k", "public_key": PUBLIC_KEY}, "placement": {"selector": "a b"}},
         400, "selector"),
    ]
    for path, body, code, words in cases:
        answer = api.post(path, json=body, headers=h)
        assert answer.status_code == code, (body, answer.text)
        assert words in answer.text, (body, answer.text)
    api.post("/v1/keypairs", json={"spec": {"name": "dup", "public_key": PUBLIC_KEY}}, headers=h)
    assert api.post("/v1/keypairs", json={"spec": {"name": "dup", "public_key": PUBLIC_KEY}},
                    headers=h).status_code == 409
    renamed = api.patch("/v1/keypairs/dup", json={"spec": {"name": "other"}}, headers=h)
    assert renamed.status_code == 400 and "cannot change" in renamed.json()["detail"]
    moved = api.patch("/v1/keypairs/dup", json={"placement": {"sites": ["edge-1"]}}, headers=h)
    assert moved.status_code == 202 and moved.json()["generation"] == 2


def test_kingbird_os_sync_checks_the_project(api: TestClient) -> None:
    body = {"resource_set": {"resource_type": "keypair", "resources": ["k"], "source": "edge-1",
                             "target": ["core-1"]}}
    assert api.post("/v1.0/p-other/os-sync", json=body, headers=as_("bob")).status_code == 400  # not a project id
    assert api.post(f"/v1.0/{uuid.uuid4().hex}/os-sync", json=body, headers=as_("bob")).status_code == 403
    made = api.post("/v1.0/p-demo/os-sync", json=body, headers=as_("bob"))
    assert made.status_code == 200 and made.json()["job_status"]["status"] == "IN_PROGRESS"
    assert api.get("/v1.0/p-other/os-sync", headers=as_("eve")).json() == {"job_set": []}
    same = api.post("/v1.0/p-demo/os-sync", json={"resource_set": {**body["resource_set"], "target": ["edge-1"]}},
                    headers=as_("bob"))
    assert same.status_code == 400 and "also a target" in same.json()["detail"]


def test_an_explicit_project_mapping_is_used_in_that_site(api: TestClient, rt: Runtime) -> None:
    from skyfleet.domains.projects import service as projects
    from skyfleet.domains.sites.models import Site

    with transaction(rt.factory) as session:
        edge = session.scalars(select(Site).where(Site.name == "edge-1")).one()
        projects.set_mapping(session, project_id="p-demo", site_id=edge.id, remote_project_id="remote-demo")
    sg = api.post("/v1/security-groups", json={"spec": {"name": "mapped"}}, headers=as_("bob")).json()
    flavor = api.post("/v1/flavors", json={"spec": {"name": "priv", "vcpus": 1, "ram": 64, "is_public": False,
                                                    "access": [{"id": "p-demo"}, {"name": "ops"}]}},
                      headers=as_("admin")).json()
    with transaction(rt.factory) as session:
        def payloads(op: str) -> dict[str, dict[str, object]]:
            return {t.site_name: t.payload for t in session.scalars(select(Task).where(Task.operation_id == op))}

        groups = payloads(sg["operation_id"])
        assert groups["edge-1"]["project"] == {"id": "remote-demo", "name": None}
        assert groups["core-1"]["project"] == {"id": "p-demo", "name": "demo", "domain_name": "Default"}
        access = payloads(flavor["operation_id"])
        assert access["edge-1"]["access"][0] == {"id": "remote-demo", "name": None}
        assert access["core-1"]["access"][0]["id"] == "p-demo"
        assert access["edge-1"]["access"][1]["name"] == "ops"
