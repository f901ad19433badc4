"""Domain admins on simulated sites: a user holding the admin role on domain ``acme`` of the home
Keystone, with a token scoped to that domain, declares a project, a user and a role assignment in
``acme`` and they converge on every site (the embedded workers run on their own; the test polls the
sites). The same caller is refused (403, with the reason) for another domain, the ``Default``
domain, the admin role, ``create_missing_roles`` and any change of a domain declaration; it sees
only its own domain's declarations (another domain's is 404, like another tenant's object), and a
token with only the reader role on the domain reaches none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites
from tests.functional.conftest import site_auth, token_for
from tests.functional.test_identity_on_simulator import wait_for

PASSWORD = "wendy-first-Pass1"


@pytest.fixture
def fleet() -> Iterator[Simulator]:
    simulator = Simulator(sites=3)
    simulator.start()
    yield simulator
    simulator.stop()


def domain_token(auth_url: str, user: str, password: str, domain: str) -> str:
    """A token of a user of ``domain``, scoped to that domain (as ``openstack --os-domain-name``)."""
    plugin = v3.Password(auth_url=auth_url, username=user, password=password, user_domain_name=domain,
                         domain_name=domain)
    token: str = ks_session.Session(auth=plugin).get_token()
    return token


def converged(sim: Simulator, site: str, domain: str) -> bool:
    """Whether ``wendy`` of ``domain`` holds ``member`` on ``web`` of ``domain`` in the site's Keystone."""
    ks = sim.state(site).keystone
    did = ks.domain_by_name(domain)["id"]  # type: ignore[index]
    user, project = ks.user_by_name("wendy", did), ks.project_by_name("web", did)
    return bool(user and project) and {r["name"] for r in ks.user_roles(user["id"], project["id"])} == {  # type: ignore[index]
        "member"}


def test_a_domain_admin_declares_in_its_own_domain_only(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    sim = fleet
    sites = sim.site_names()
    auth = site_auth(sim, sites[0])  # the first site's Keystone is Skyfleet's home
    home = sim.state(sites[0]).keystone
    for site in sites:  # the domains exist in every site (declaring domains is a fleet admin's business)
        for name in ("acme", "beta"):
            sim.state(site).keystone.add_domain(name)
    acme = home.domain_by_name("acme")["id"]  # type: ignore[index]
    for user, role in (("dana", "admin"), ("dora", "reader")):
        uid = home.add_user(user, f"{user}-pass", None, domain_id=acme)
        home.scoped_grants.add(("domains", acme, "users", uid, home.role_id(role), False))
    runtime = runtime_factory(db_url, engine_poll_interval=0.2, auth_mode="keystone", home_auth_url=auth["auth_url"],
                              home_username=auth["username"], home_password=auth["password"],
                              home_project_name=auth["project_name"])
    register_sites(runtime.factory, runtime.box, sim)
    admin = {"X-Auth-Token": token_for(sim, sites[0], "admin")}
    dana = {"X-Auth-Token": domain_token(auth["auth_url"], "dana", "dana-pass", "acme")}
    dora = {"X-Auth-Token": domain_token(auth["auth_url"], "dora", "dora-pass", "acme")}
    with TestClient(create_app(runtime, start_workers=True)) as api:
        for name in ("acme", "beta"):  # the fleet admin's: adopted where they exist
            assert api.post("/v1/identity/domains", json={"spec": {"name": name}}, headers=admin).status_code == 202
        theirs = api.post("/v1/identity/projects", json={"spec": {"name": "bp", "domain": "beta"}}, headers=admin)
        assert theirs.status_code == 202, theirs.text

        # declared by the domain admin, in its domain (named by name, or by its id in the home Keystone)
        project = api.post("/v1/identity/projects", json={"spec": {"name": "web", "domain": "acme"}}, headers=dana)
        assert project.status_code == 202, project.text
        user = api.post("/v1/identity/users", headers=dana, json={"spec": {
            "name": "wendy", "domain": acme, "password": PASSWORD, "default_project": "web"}})
        assert user.status_code == 202, user.text
        assert user.json()["spec"]["domain"] == "acme"  # sites know the domain by its name
        grant = api.put("/v1/identity/role-assignments", headers=dana, json={"spec": {
            "user": "wendy", "project": "web", "role": "member", "domain": "acme"}})
        assert grant.status_code == 202, grant.text
        wait_for(lambda: all(converged(sim, s, "acme") for s in sites), "wendy holds member on web in every site")
        for path in ("projects/web", "users/wendy", "role-assignments/user:wendy:web:member@acme"):
            wait_for(lambda p=path: {b["status"] for b in api.get(f"/v1/identity/{p}", headers=dana).json()[
                "bindings"]} == {"in-sync"}, f"{path} is in sync everywhere")

        # refused, with the reason: another domain, Default, the admin role, creating roles, domains
        refusals: list[tuple[str, str, dict[str, Any], str]] = [
            ("POST", "projects", {"spec": {"name": "x", "domain": "beta"}}, "only in its own domain"),
            ("POST", "users", {"spec": {"name": "x"}}, "only in its own domain"),  # Default
            ("POST", "groups", {"spec": {"name": "x", "domain": "beta"}}, "only in its own domain"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "project": "web", "role": "member",
                                                  "domain": "beta"}}, "only in its own domain"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "project": "web", "role": "admin",
                                                  "domain": "acme"}}, "admin role"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "role": "admin", "domain": "acme"}}, "admin role"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "project": "web", "role": "auditor",
                                                  "domain": "acme", "create_missing_roles": True}}, "fleet admins"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "user_domain": "beta", "project": "web",
                                                  "role": "reader", "domain": "acme"}}, "user_domain 'beta'"),
            ("PUT", "role-assignments", {"spec": {"user": "wendy", "project": "bp", "project_domain": "beta",
                                                  "role": "reader", "domain": "acme"}}, "project_domain 'beta'"),
            ("PATCH", "projects/web", {"spec": {"domain": "beta"}}, "only in its own domain"),
            ("POST", "domains", {"spec": {"name": "gamma"}}, "fleet admins"),
            ("PATCH", "domains/acme", {"spec": {"description": "mine"}}, "fleet admins"),
            ("DELETE", "domains/acme", {}, "fleet admins"),
        ]
        for method, path, body, reason in refusals:
            answer = api.request(method, f"/v1/identity/{path}", headers=dana, json=body or None)
            assert answer.status_code == 403 and reason in answer.text, (method, path, answer.text)
        assert api.get("/v1/identity/projects/web", headers=dana).json()["spec"]["domain"] == "acme"

        # its own domain's rows only; another domain's declaration is 404, as if it did not exist
        assert [r["name"] for r in api.get("/v1/identity/projects", headers=dana).json()["resources"]] == ["web"]
        assert [r["name"] for r in api.get("/v1/identity/domains", headers=dana).json()["resources"]] == ["acme"]
        assert api.get("/v1/identity/domains/acme", headers=dana).status_code == 200
        for method, path in (("GET", "projects/bp"), ("PATCH", "projects/bp"), ("DELETE", "projects/bp"),
                             ("GET", "domains/beta")):
            answer = api.request(method, f"/v1/identity/{path}", headers=dana, json={} if method == "PATCH" else None)
            assert answer.status_code == 404, (method, path, answer.text)
        assert sorted(r["name"] for r in api.get("/v1/identity/projects", headers=admin).json()["resources"]) == \
            ["bp", "web"]
        # a fleet admin's grant across domains (wendy of acme on bp of beta) is not the domain admin's
        across = api.put("/v1/identity/role-assignments", headers=admin, json={"spec": {
            "user": "wendy", "domain": "acme", "project": "bp", "project_domain": "beta", "role": "reader"}})
        assert across.status_code == 202 and across.json()["name"] == "user:wendy:in:acme:bp:reader@beta"
        assert api.get("/v1/identity/role-assignments/user:wendy:in:acme:bp:reader@beta", headers=dana).status_code \
            == 404
        assert [r["name"] for r in api.get("/v1/identity/role-assignments", headers=dana).json()["resources"]] == \
            ["user:wendy:web:member@acme"]
        for _ in range(3):  # a 503 (a lock race with a worker folding the same bindings) says: retry
            removed = api.delete("/v1/identity/role-assignments/user:wendy:in:acme:bp:reader@beta", headers=admin)
            if removed.status_code != 503:
                break
            time.sleep(1)
        assert removed.status_code in (202, 204), removed.text
        # a domain-scoped token without the admin role reaches nothing; nor does the domain admin outside identity
        assert api.get("/v1/identity/projects", headers=dora).status_code == 403
        assert api.get("/v1/keypairs", headers=dana).status_code == 403
        assert api.get("/v1/sites", headers=dana).status_code == 403

        # and it removes what it declared (purge: deleted from every site)
        for path in ("role-assignments/user:wendy:web:member@acme", "users/wendy", "projects/web"):
            assert api.delete(f"/v1/identity/{path}?purge=true", headers=dana).status_code in (202, 204), path
        wait_for(lambda: all(sim.state(s).keystone.user_by_name("wendy", sim.state(s).keystone.domain_by_name(
            "acme")["id"]) is None for s in sites), "wendy is deleted from every site")  # type: ignore[index]
