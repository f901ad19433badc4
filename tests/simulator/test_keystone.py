"""Keystone: discovery, password/token/application-credential auth, catalog, validation, identity CRUD."""

from __future__ import annotations

from typing import Any

import openstack.exceptions
import pytest
import requests

from skyfleet.simulator import Simulator

from .conftest import connect


def test_identity_root_is_a_300_version_list(sim: Simulator) -> None:
    resp = requests.get(f"{sim.base_url}/site-0001/identity", timeout=5)
    assert resp.status_code == 300
    (version,) = resp.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"][0]["href"] == f"{sim.base_url}/site-0001/identity/v3/"
    assert requests.get(f"{sim.base_url}/site-0001/identity/v3", timeout=5).json()["version"]["id"] == version["id"]


def test_password_token_has_catalog_roles_and_project(sim: Simulator) -> None:
    url = f"{sim.base_url}/site-0002/identity/v3/auth/tokens"
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": "admin-secret"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = requests.post(url, json=body, timeout=5)
    assert resp.status_code == 201
    token = resp.headers["X-Subject-Token"]
    doc = resp.json()["token"]
    assert doc["project"]["name"] == "admin" and doc["user"]["name"] == "admin"
    assert {r["name"] for r in doc["roles"]} == {"admin"}
    assert doc["expires_at"].endswith("Z")
    types = {svc["type"]: svc for svc in doc["catalog"]}
    assert {"identity", "compute", "image", "network", "block-storage", "volumev3"} <= set(types)
    interfaces = {e["interface"] for e in types["compute"]["endpoints"]}
    assert interfaces == {"public", "internal", "admin"}
    volume_url = types["block-storage"]["endpoints"][0]["url"]
    assert volume_url.endswith(f"/site-0002/volume/v3/{doc['project']['id']}")

    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    check = requests.get(url, headers=headers, timeout=5)
    assert check.status_code == 200 and check.headers["X-Subject-Token"] == token
    unknown = requests.get(url, headers={"X-Auth-Token": token, "X-Subject-Token": "nope"}, timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": 404, "title": "Not Found", "message": "Could not find token: nope."}
    # a token of one site means nothing to another site
    other = requests.get(f"{sim.base_url}/site-0003/identity/v3/auth/tokens", headers=headers, timeout=5)
    assert other.status_code == 401
    assert other.json()["error"]["title"] == "Unauthorized"


def test_domain_scoped_token_carries_the_roles_on_that_domain(sim: Simulator) -> None:
    """As Keystone: ``token.domain`` {id, name}, the roles granted on the domain itself (an inherited
    grant reaches its projects, not the domain), no project, and 401 for a user with no role there."""
    ks = sim.state("site-0003").keystone
    did = ks.add_domain("acme-scoped")
    dana = ks.add_user("dana", "dana-pass", None, domain_id=did)
    ks.scoped_grants.add(("domains", did, "users", dana, ks.role_id("admin"), False))
    ks.scoped_grants.add(("domains", did, "users", dana, ks.role_id("member"), True))  # inherited: not here
    ks.add_user("dora", "dora-pass", None, domain_id=did)
    url = f"{sim.base_url}/site-0003/identity/v3/auth/tokens"

    def issue(user: str) -> requests.Response:
        return requests.post(url, timeout=5, json={"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"name": "acme-scoped"}, "password": f"{user}-pass"}}},
            "scope": {"domain": {"name": "acme-scoped"}}}})

    resp = issue("dana")
    assert resp.status_code == 201
    doc = resp.json()["token"]
    assert doc["domain"] == {"id": did, "name": "acme-scoped"} and "project" not in doc
    assert [r["name"] for r in doc["roles"]] == ["admin"]
    assert issue("dora").status_code == 401


def test_wrong_password_is_401_for_openstacksdk(sim: Simulator) -> None:
    bad = connect(sim, "site-0001", auth={**sim.cloud("site-0001")["auth"], "password": "wrong"})
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        bad.authorize()


def test_token_and_application_credential_auth(sim: Simulator, conn: Any) -> None:
    token = conn.auth_token
    by_token = connect(sim, "site-0001", auth_type="token",
                       auth={"auth_url": sim.cloud("site-0001")["auth"]["auth_url"], "token": token,
                             "project_name": "admin", "project_domain_name": "Default"})
    assert by_token.identity.get_project(conn.current_project_id).name == "admin"

    user_id = conn.current_user_id
    cred = conn.identity.create_application_credential(user=user_id, name="skyfleet-ci")
    assert cred.secret
    by_cred = connect(sim, "site-0001", auth_type="v3applicationcredential",
                      auth={"auth_url": sim.cloud("site-0001")["auth"]["auth_url"],
                            "application_credential_id": cred.id, "application_credential_secret": cred.secret})
    assert by_cred.current_project_id == conn.current_project_id
    assert [p.name for p in by_cred.identity.projects()]  # admin roles carried over
    conn.identity.delete_application_credential(user=user_id, application_credential=cred.id)
    stale = connect(sim, "site-0001", auth_type="v3applicationcredential",
                    auth={"auth_url": sim.cloud("site-0001")["auth"]["auth_url"],
                          "application_credential_id": cred.id, "application_credential_secret": cred.secret})
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        stale.authorize()


def test_projects_users_roles_and_assignments(conn: Any) -> None:
    project = conn.identity.create_project(name="team-a", domain_id="default", description="t")
    user = conn.identity.create_user(name="alice", password="pw", domain_id="default",
                                     default_project_id=project.id)
    member = conn.identity.find_role("member")
    conn.identity.assign_project_role_to_user(project, user, member)
    assert conn.identity.validate_user_has_project_role(project, user, member)
    assignments = list(conn.identity.role_assignments(user_id=user.id, scope_project_id=project.id))
    assert [a.role["id"] for a in assignments] == [member.id]
    assert conn.identity.find_project("team-a").id == project.id
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.identity.create_project(name="team-a", domain_id="default")
    conn.identity.unassign_project_role_from_user(project, user, member)
    assert not conn.identity.validate_user_has_project_role(project, user, member)
    conn.identity.delete_user(user)
    conn.identity.delete_project(project)
    assert conn.identity.find_project("team-a") is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.identity.get_project(project.id)


def test_member_is_scoped_to_its_project(demo: Any) -> None:
    assert demo.identity.get_project(demo.current_project_id).name == "demo"
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.identity.projects())
