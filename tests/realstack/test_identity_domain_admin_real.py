"""A domain admin on the two real sites (each with its own Keystone). In site1's Keystone, Skyfleet's
home, the test makes a domain and a user holding the ``admin`` role on it, and takes a token scoped
to that domain. A fleet admin declares the domain for site1 and site2 (adopted on site1, created on
site2); the domain admin then declares a project and a user with a password in it, for both sites,
and the test checks with openstacksdk that both exist in both Keystones. The same token is refused
(403) for another domain and for the admin role, and sees only its own domain's declarations.
Everything is purged through the API, then swept by hand whatever happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, tidy, token, wait_for
from tests.realstack.test_identity_real import SITES

pytestmark = pytest.mark.realstack
ADMIN_PASSWORD, USER_PASSWORD = "Dana-domain-admin-1", "Wendy-first-pass-1"
DESCRIPTION = "Skyfleet domain admin test"


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"domain": f"dadm-{tag}", "admin": f"dana-{tag}", "project": f"web-{tag}", "user": f"wendy-{tag}"}


def domain_token(auth_url: str, names: dict[str, str]) -> str:
    """The domain admin's token, scoped to its domain (not to a project)."""
    plugin = v3.Password(auth_url=auth_url, username=names["admin"], password=ADMIN_PASSWORD,
                         user_domain_name=names["domain"], domain_name=names["domain"])
    value: str = ks_session.Session(auth=plugin).get_token()
    return value


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any],
        names: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    home = clouds["site1"]["auth"]
    try:
        idn = connect(home).identity  # the domain admin lives in the home Keystone
        domain = idn.create_domain(name=names["domain"], description=DESCRIPTION, enabled=True)
        dana = idn.create_user(name=names["admin"], password=ADMIN_PASSWORD, domain_id=domain.id)
        idn.assign_domain_role_to_user(domain, dana, idn.find_role("admin", ignore_missing=False))
        with fleet_api(runtime_factory, clouds, SITES, site_timeout=30, audit_interval=5,
                       sync_audit_interval=5) as client:
            admin = {"X-Auth-Token": token(home)}
            yield client, admin, {"X-Auth-Token": domain_token(home["auth_url"], names)}
    finally:
        _sweep(clouds, names)


def _sweep(clouds: dict[str, Any], names: dict[str, str]) -> None:
    """Disable and delete the domain on every site (Keystone deletes what it holds with it)."""
    for site in SITES:
        try:
            idn = connect(clouds[site]["auth"]).identity
            domain = idn.find_domain(names["domain"], ignore_missing=True)
        except Exception as exc:  # clean-up reports, never replaces the test's outcome
            print(f"clean-up on {site} failed: {exc}")
            continue
        if domain is not None:
            tidy(idn.update_domain, domain, enabled=False)
            tidy(idn.delete_domain, domain, ignore_missing=True)


def exists_everywhere(clouds: dict[str, Any], names: dict[str, str]) -> bool:
    """Whether the project and the user are in the domain in every site's Keystone (openstacksdk)."""
    for site in SITES:
        idn = connect(clouds[site]["auth"]).identity
        domain = idn.find_domain(names["domain"], ignore_missing=True)
        if domain is None or idn.find_project(names["project"], domain_id=domain.id, ignore_missing=True) is None \
                or idn.find_user(names["user"], domain_id=domain.id, ignore_missing=True) is None:
            return False
    return True


def test_a_domain_admin_declares_in_its_own_domain_on_both_real_sites(
        api: tuple[TestClient, dict[str, str], dict[str, str]], clouds: dict[str, Any],
        names: dict[str, str]) -> None:
    client, admin, dana = api
    domain, placement = names["domain"], {"sites": list(SITES)}
    declared = client.post("/v1/identity/domains", headers=admin, json={
        "spec": {"name": domain, "description": DESCRIPTION}, "placement": placement})
    assert declared.status_code == 202, declared.text
    refs = []
    for path, spec in (("projects", {"name": names["project"], "domain": domain}),
                       ("users", {"name": names["user"], "domain": domain, "password": USER_PASSWORD,
                                  "default_project": names["project"]})):
        made = client.post(f"/v1/identity/{path}", json={"spec": spec, "placement": placement}, headers=dana)
        assert made.status_code == 202, made.text
        refs.append(f"{path}/{spec['name']}")
    assert wait_for(lambda: exists_everywhere(clouds, names), 60), \
        [client.get(f"/v1/identity/{ref}", headers=dana).text for ref in refs]

    # another domain, Default, the admin role and domain declarations: refused. The names are the ones
    # declared above on purpose: if the domain check were missing, the answer would be a 409, and nothing
    # would be created in a domain this test does not sweep.
    for method, path, spec in (
            ("POST", "projects", {"name": names["project"], "domain": "Default"}),
            ("POST", "users", {"name": names["user"], "domain": f"other-{domain}"}),
            ("PUT", "role-assignments", {"user": names["user"], "project": names["project"], "role": "admin",
                                         "domain": domain}),
            ("POST", "domains", {"name": f"other-{domain}"})):
        refused = client.request(method, f"/v1/identity/{path}", headers=dana,
                                 json={"spec": spec, "placement": placement})
        assert refused.status_code == 403, (path, refused.text)
    listed = client.get("/v1/identity/domains", headers=dana).json()["resources"]
    assert [r["name"] for r in listed] == [domain]
    assert {r["spec"]["domain"] for r in client.get("/v1/identity/projects", headers=dana).json()["resources"]} \
        == {domain}

    for ref in refs[::-1]:  # the domain admin removes its own; the fleet admin the domain
        assert client.delete(f"/v1/identity/{ref}", params={"purge": True}, headers=dana).status_code in (202, 204)
    assert wait_for(lambda: all(client.get(f"/v1/identity/{ref}", headers=admin).status_code == 404
                                for ref in refs), 60)
    client.delete(f"/v1/identity/domains/{domain}", params={"purge": True}, headers=admin)
