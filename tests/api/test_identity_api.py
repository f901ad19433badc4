"""The identity API's rules without any site call: fleet admins only, validation (4xx with the
reason), Skyfleet's own credential and the admin role protected, and a user's password write-only:
sealed at rest, in no answer, no task payload in clear, no log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Operation, Task
from skyfleet.domains.sync.models import SyncResource
from tests.api.test_sync_api import FakeValidator, as_
from tests.conftest import make_settings
from tests.support import FakeProber, site_body

SECRET = "Correct-Horse-Battery-9"


@pytest.fixture
def rt(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    settings = make_settings(tmp_path, database_url=db_url, auth_mode="keystone",
                             home_auth_url="http://edge-1.example.test:5000/v3", home_username="svc",
                             home_password="pw")
    runtime = build_runtime(settings, prober=FakeProber())
    runtime.validator = FakeValidator()  # type: ignore[assignment]
    yield runtime
    runtime.close()


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_workers=False)) as client:
        for name in ("edge-1", "core-1"):
            assert client.post("/v1/sites?probe=false", json=site_body(name),
                               headers=as_("admin")).status_code == 201
        yield client


def _user(api: TestClient, **spec: object) -> dict[str, object]:
    response = api.post("/v1/identity/users", headers=as_("admin"),
                        json={"spec": {"name": "alice", "password": SECRET, **spec}})
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_password_is_write_only_and_sealed(api: TestClient, rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = _user(api, email="alice@example.org", groups=["ops"])
    assert SECRET not in str(made) and "password_box" not in str(made)
    assert made["options"]["password_set"] is True and "password" not in made["spec"]  # type: ignore[index]
    assert [b["status"] for b in made["bindings"]] == ["pending", "pending"]  # type: ignore[union-attr]
    for path in ("/v1/identity/users", "/v1/identity/users/alice", f"/v1/operations/{made['operation_id']}"):
        body = api.get(path, headers=as_("admin")).text
        assert SECRET not in body and "gAAAA" not in body, path  # neither the password nor its ciphertext
    with transaction(rt.factory) as session:
        resource = session.scalars(select(SyncResource).where(SyncResource.name == "alice")).one()
        assert "password" not in resource.spec
        assert rt.box.decrypt(resource.options["password_box"]) == {"password": SECRET}
        payloads = [t.payload for t in session.scalars(select(Task).where(Task.kind == "sync.user"))]
        assert len(payloads) == 2 and all(p["password_box"] == resource.options["password_box"] for p in payloads)
        assert all(SECRET not in str(p) for p in payloads)
        op = session.get(Operation, made["operation_id"])
        assert op is not None and SECRET not in str(op.payload)
    assert SECRET not in caplog.text


def test_rotation_reseals_and_null_means_managed_elsewhere(api: TestClient, rt: Runtime) -> None:
    first = _user(api)
    rotated = api.patch("/v1/identity/users/alice", headers=as_("admin"),
                        json={"spec": {"password": "Another-Secret-42"}})
    assert rotated.status_code == 202 and "Another-Secret-42" not in rotated.text
    assert rotated.json()["generation"] == 2 and rotated.json()["operation_id"] != first["operation_id"]
    assert {b["status"] for b in rotated.json()["bindings"]} == {"pending"}  # every site still on the old one
    with transaction(rt.factory) as session:
        resource = session.scalars(select(SyncResource).where(SyncResource.name == "alice")).one()
        assert rt.box.decrypt(resource.options["password_box"]) == {"password": "Another-Secret-42"}
    described = api.patch("/v1/identity/users/alice", headers=as_("admin"), json={"spec": {"description": "x"}})
    assert described.json()["options"]["password_set"] is True  # a patch without password keeps it
    cleared = api.patch("/v1/identity/users/alice", headers=as_("admin"), json={"spec": {"password": None}})
    assert cleared.json()["options"]["password_set"] is False
    external = api.post("/v1/identity/users", headers=as_("admin"), json={"spec": {"name": "bob", "password": None}})
    assert external.status_code == 202 and external.json()["options"]["password_set"] is False


@pytest.mark.parametrize(("path", "spec", "reason"), [
    ("users", {"name": "alice", "colour": "red"}, "unknown field"),
    ("users", {"name": "alice", "password": 12345}, "spec.password"),
    ("users", {"name": "alice", "password": ""}, "spec.password"),
    ("users", {"name": "al/ice"}, "name"),
    ("users", {"name": "alice", "enabled": "perhaps"}, "enabled"),
    ("projects", {"name": "acme", "password": "x"}, "unknown field"),
    ("projects", {}, "name"),
    ("groups", {"name": "ops", "enabled": False}, "unknown field"),
    ("projects", {"name": "acme\u202egpj"}, "name"),  # a bidi override would make it display as another
    ("users", {"name": "alice", "groups": ["ops\u0000"]}, "groups"),
    ("groups", {"name": "ops", "description": "a\u001b[31m"}, "description"),
])
def test_bad_specs_are_400_with_the_reason(api: TestClient, path: str, spec: dict[str, object], reason: str) -> None:
    response = api.post(f"/v1/identity/{path}", headers=as_("admin"), json={"spec": spec})
    assert response.status_code == 400, response.text
    assert reason in response.text and "12345" not in response.text


@pytest.mark.parametrize("spec", [
    {"user": "alice", "group": "ops", "project": "acme", "role": "member"},
    {"project": "acme", "role": "member"},
    {"user": "alice", "project": "acme"},
    {"user": "alice", "role": "member", "inherited": "sometimes"},
    {"user": "alice", "role": "member", "create_missing_roles": "please"},
    {"user": "alice", "role": "member", "domain": "Acme/x"},
])
def test_bad_role_assignments_are_400(api: TestClient, spec: dict[str, str]) -> None:
    response = api.put("/v1/identity/role-assignments", headers=as_("admin"), json={"spec": spec})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(("path", "spec", "method"), [
    ("users", {"name": "admin"}, "post"),
    ("projects", {"name": "admin"}, "post"),
    ("role-assignments", {"user": "admin", "project": "acme", "role": "member"}, "put"),
    ("role-assignments", {"user": "alice", "project": "admin", "role": "member"}, "put"),
    ("role-assignments", {"group": "ops", "project": "acme", "role": "admin"}, "put"),
])
def test_skyfleets_own_credential_and_the_admin_role_are_protected(api: TestClient, path: str,
                                                                  spec: dict[str, str], method: str) -> None:
    response = getattr(api, method)(f"/v1/identity/{path}", headers=as_("admin"), json={"spec": spec})
    assert response.status_code == 400, response.text
    assert "Skyfleet" in response.json()["detail"] or "protected" in response.json()["detail"]


def test_tenants_get_nothing(api: TestClient) -> None:
    _user(api)
    for method, path in (("post", "/v1/identity/projects"), ("get", "/v1/identity/users"),
                         ("get", "/v1/identity/users/alice"), ("put", "/v1/identity/role-assignments"),
                         ("delete", "/v1/identity/users/alice")):
        kwargs = {"json": {"spec": {"name": "x"}}} if method in ("post", "put") else {}
        response = getattr(api, method)(path, headers=as_("bob"), **kwargs)
        assert response.status_code == 403, (path, response.text)
        assert SECRET not in response.text


def test_duplicates_conflict_and_role_assignments_are_idempotent(api: TestClient) -> None:
    assert api.post("/v1/identity/projects", headers=as_("admin"), json={"spec": {"name": "acme"}}).status_code == 202
    again = api.post("/v1/identity/projects", headers=as_("admin"), json={"spec": {"name": "acme"}})
    assert again.status_code == 409
    spec = {"user": "alice", "project": "acme", "role": "member"}
    first = api.put("/v1/identity/role-assignments", headers=as_("admin"), json={"spec": spec})
    second = api.put("/v1/identity/role-assignments", headers=as_("admin"),
                     json={"spec": spec, "placement": {"sites": ["edge-1"]}})
    assert first.status_code == second.status_code == 202, second.text
    assert first.json()["id"] == second.json()["id"] and first.json()["name"] == "user:alice:acme:member"
    assert second.json()["placement"] == {"sites": ["edge-1"]}
    listed = api.get("/v1/identity/role-assignments", headers=as_("admin")).json()["resources"]
    assert [r["name"] for r in listed] == ["user:alice:acme:member"]
    gone = api.delete("/v1/identity/role-assignments/user:alice:acme:member", headers=as_("admin"))
    assert gone.status_code == 202 and gone.json()["state"] == "deleting"
    unknown_site = api.post("/v1/identity/groups", headers=as_("admin"),
                            json={"spec": {"name": "ops"}, "placement": {"sites": ["nowhere"]}})
    assert unknown_site.status_code == 400 and "nowhere" in unknown_site.text


def test_domain_targets_inheritance_and_create_missing_roles_name_and_update(api: TestClient) -> None:
    """No project: the domain is the target. ``inherited`` is part of what is granted (its own
    declaration); ``create_missing_roles`` is an option a second PUT changes."""
    cases = [({"user": "alice", "role": "auditor"}, "user:alice:domain:Default:auditor"),
             ({"group": "ops", "role": "reader", "domain": "Acme", "inherited": True},
              "inherited:group:ops:domain:Acme:reader"),
             ({"user": "alice", "project": "acme", "role": "reader", "inherited": True},
              "inherited:user:alice:acme:reader")]
    for spec, name in cases:
        made = api.put("/v1/identity/role-assignments", headers=as_("admin"), json={"spec": spec})
        assert made.status_code == 202, made.text
        assert made.json()["name"] == name and made.json()["spec"]["create_missing_roles"] is False
    assert api.get("/v1/identity/role-assignments/user:alice:domain:Default:auditor",
                   headers=as_("admin")).json()["spec"]["project"] is None
    again = api.put("/v1/identity/role-assignments", headers=as_("admin"),
                    json={"spec": {"user": "alice", "role": "auditor", "create_missing_roles": True}})
    assert again.status_code == 202 and again.json()["name"] == "user:alice:domain:Default:auditor"
    assert again.json()["spec"]["create_missing_roles"] is True
    listed = api.get("/v1/identity/role-assignments", headers=as_("admin")).json()["resources"]
    assert len(listed) == 3
    admin = api.put("/v1/identity/role-assignments", headers=as_("admin"),
                    json={"spec": {"user": "alice", "role": "admin", "create_missing_roles": True}})
    assert admin.status_code == 400 and "protected" in admin.text
