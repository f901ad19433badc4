"""Declared domains, inherited domain grants and roles created when missing, on the two real sites
(each with its own Keystone). A fleet admin declares a domain, a project and a user with a password
in it (the objects before the domain, so their tasks wait for it), an inherited ``member`` grant on
the domain, and a role that no site has on the project with ``create_missing_roles``. The test waits
until the user logs in to the project on both sites with both roles in the token, then purges
everything through the API (the domain disabled, then deleted) and sweeps by hand whatever is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, token, wait_for
from tests.realstack.test_identity_real import SITES

pytestmark = pytest.mark.realstack
PASSWORD = "Dora-first-pass-1"


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"domain": f"acme-{tag}", "project": f"lab-{tag}", "user": f"dora-{tag}", "role": f"auditor-{tag}"}


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any],
        names: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = clouds["site1"]["auth"]
    try:
        with fleet_api(runtime_factory, clouds, SITES, site_timeout=30, audit_interval=5,
                       sync_audit_interval=5) as client:
            headers = {"X-Auth-Token": token(home)}
            yield client, headers
    finally:
        _sweep(clouds, names)


def _sweep(clouds: dict[str, Any], names: dict[str, str]) -> None:
    for site in SITES:
        idn = connect(clouds[site]["auth"]).identity
        domain = idn.find_domain(names["domain"], ignore_missing=True)
        if domain is not None:
            idn.update_domain(domain, enabled=False)
            idn.delete_domain(domain, ignore_missing=True)  # its project and user go with it
        role = idn.find_role(names["role"], ignore_missing=True)
        if role is not None:
            idn.delete_role(role, ignore_missing=True)


def roles_in_token(clouds: dict[str, Any], site: str, names: dict[str, str]) -> set[str]:
    auth = {**clouds[site]["auth"], "username": names["user"], "password": PASSWORD,
            "project_name": names["project"], "user_domain_name": names["domain"],
            "project_domain_name": names["domain"]}
    try:
        conn = connect(auth)
        access = conn.session.auth.get_access(conn.session)
    except Exception:  # any refusal means "not yet"
        return set()
    return set(access.role_names)


def test_domain_inherited_grant_and_created_role_on_both_real_sites(
        api: tuple[TestClient, dict[str, str]], clouds: dict[str, Any], names: dict[str, str]) -> None:
    client, headers = api
    domain, project, user, role = names["domain"], names["project"], names["user"], names["role"]
    for path, spec in (("projects", {"name": project, "domain": domain}),
                       ("users", {"name": user, "domain": domain, "password": PASSWORD}),
                       ("domains", {"name": domain, "description": "declared once"})):
        made = client.post(f"/v1/identity/{path}", json={"spec": spec}, headers=headers)
        assert made.status_code == 202, made.text
    assignments = ({"user": user, "domain": domain, "role": "member", "inherited": True},
                   {"user": user, "domain": domain, "project": project, "role": role, "create_missing_roles": True})
    refs = []
    for spec in assignments:
        put = client.put("/v1/identity/role-assignments", json={"spec": spec}, headers=headers)
        assert put.status_code == 202, put.text
        refs.append(f"role-assignments/{put.json()['name']}")
    assert wait_for(lambda: all({"member", role} <= roles_in_token(clouds, s, names) for s in SITES)), \
        [client.get(f"/v1/identity/{ref}", headers=headers).text for ref in refs]
    shown = client.get(f"/v1/identity/domains/{domain}", headers=headers).json()
    assert {b["owned"] for b in shown["bindings"]} == {True}, shown

    refs += [f"users/{user}", f"projects/{project}", f"domains/{domain}"]
    for ref in refs:
        client.delete(f"/v1/identity/{ref}", params={"purge": True}, headers=headers)
    assert wait_for(lambda: all(client.get(f"/v1/identity/{ref}", headers=headers).status_code == 404
                                for ref in refs), 120)
    for site in SITES:
        assert connect(clouds[site]["auth"]).identity.find_domain(domain, ignore_missing=True) is None, site
