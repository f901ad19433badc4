"""A hostile tenant and a hostile domain admin against declared identity, with real tokens of the
simulated home Keystone (the first site): every attempt goes through the HTTP API only.

- a domain admin of ``acme`` cannot make a declaration land in another domain (case, whitespace,
  look-alike letters, another domain's id, a PATCH), learns nothing of another domain from a
  taken name, and reaches no route outside declared identity;
- it cannot make anybody an admin of a site: no admin role however it is spelled, and on a site
  that shares nothing with the home Keystone no membership in a group that holds the admin role
  there, and no take-over (``force``, a password) of a user that holds it;
- a tenant reaches no identity route and no other tenant's Kingbird URL; only the first
  ``X-Auth-Token`` header counts, and it wins over a dashboard session cookie, which changes nothing
  without its CSRF token or from another origin; bad bodies are 4xx and store nothing;
- a user's password appears in no answer, error text, operation, event or log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.sync.models import SyncResource
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites
from tests.functional.conftest import site_auth, token_for
from tests.functional.test_identity_domain_admin import domain_token
from tests.functional.test_identity_on_simulator import wait_for

SECRET = "Sw0rdfish-never-shown-9"


@pytest.fixture
def fleet() -> Iterator[Simulator]:
    simulator = Simulator(sites=2)
    simulator.start()
    yield simulator
    simulator.stop()


def setup(sim: Simulator, runtime_factory: Callable[..., Runtime], db_url: str, admin_role: str = "admin",
          **overrides: Any) -> tuple[Runtime, dict[str, dict[str, str]]]:
    """Domains ``acme`` and ``beta`` everywhere, ``dana`` the admin of ``acme`` in the home Keystone;
    the callers' headers: fleet admin, dana, and the tenant ``demo`` (member of project demo).
    ``admin_role``: the fleet admin role (SKYFLEET_ADMIN_ROLE), held by the admin user on the admin
    project and by dana on acme."""
    sites = sim.site_names()
    auth = site_auth(sim, sites[0])
    home = sim.state(sites[0]).keystone
    for site in sites:
        for name in ("acme", "beta"):
            if sim.state(site).keystone.domain_by_name(name) is None:
                sim.state(site).keystone.add_domain(name)
    acme = home.domain_by_name("acme")["id"]  # type: ignore[index]
    uid = home.add_user("dana", "dana-pass", None, domain_id=acme)
    if admin_role != "admin":
        home.roles[admin_role] = {"id": admin_role, "name": admin_role, "domain_id": None, "options": {}}
        home.assignments.add((home.user_by_name("admin")["id"], home.admin_project, admin_role))  # type: ignore[index]
    home.scoped_grants.add(("domains", acme, "users", uid, home.role_id(admin_role), False))
    settings = {"engine_poll_interval": 0.2, "auth_mode": "keystone", "home_auth_url": auth["auth_url"],
                "home_username": auth["username"], "home_password": auth["password"],
                "home_project_name": auth["project_name"], "fanout_burst": 10_000, "admin_role": admin_role}
    runtime = runtime_factory(db_url, **{**settings, **overrides})
    register_sites(runtime.factory, runtime.box, sim)
    callers = {"admin": {"X-Auth-Token": token_for(sim, sites[0], "admin")},
               "dana": {"X-Auth-Token": domain_token(auth["auth_url"], "dana", "dana-pass", "acme")},
               "tenant": {"X-Auth-Token": token_for(sim, sites[0], "demo")}}
    return runtime, callers


def stored(runtime: Runtime) -> int:
    with transaction(runtime.factory) as session:
        return int(session.scalar(select(func.count()).select_from(SyncResource)) or 0)


def test_a_domain_admin_declares_nothing_outside_its_domain(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    runtime, who = setup(fleet, runtime_factory, db_url)
    beta_id = fleet.state(fleet.site_names()[0]).keystone.domain_by_name("beta")["id"]  # type: ignore[index]
    with TestClient(create_app(runtime, start_workers=False)) as api:
        assert api.post("/v1/identity/projects", headers=who["admin"],
                        json={"spec": {"name": "bp", "domain": "beta"}}).status_code == 202
        assert api.post("/v1/identity/projects", headers=who["dana"],
                        json={"spec": {"name": "web", "domain": "acme"}}).status_code == 202
        before = stored(runtime)
        elsewhere = ("beta", "ACME", "Acme", " acme", "acme ", "acme\u200b", "\u0430cme", "ac\u0301me", beta_id,
                     "default", "Default")
        for domain in elsewhere:
            for method, path, spec in (
                    ("POST", "projects", {"name": "x", "domain": domain}),
                    ("POST", "users", {"name": "x", "domain": domain, "default_project": "bp", "groups": ["g"]}),
                    ("POST", "groups", {"name": "x", "domain": domain}),
                    ("PUT", "role-assignments", {"user": "x", "project": "bp", "role": "member", "domain": domain}),
                    ("PUT", "role-assignments", {"group": "x", "role": "member", "domain": domain,
                                                 "inherited": True}),
                    # the grant's own domain is acme, its user, group or project named in another
                    ("PUT", "role-assignments", {"user": "x", "user_domain": domain, "project": "web",
                                                 "role": "member", "domain": "acme"}),
                    ("PUT", "role-assignments", {"group": "x", "group_domain": domain, "role": "member",
                                                 "domain": "acme"}),
                    ("PUT", "role-assignments", {"user": "x", "project": "bp", "project_domain": domain,
                                                 "role": "member", "domain": "acme"}),
                    ("PATCH", "projects/web", {"domain": domain})):
                answer = api.request(method, f"/v1/identity/{path}", headers=who["dana"], json={"spec": spec})
                assert answer.status_code in (400, 403), (method, path, domain, answer.text)
        assert stored(runtime) == before
        assert api.get("/v1/identity/projects/web", headers=who["dana"]).json()["spec"]["domain"] == "acme"

        # a name taken in another domain is another declaration (names are unique within a domain); the
        # domain admin sees only its own, by the bare name too, and never learns of the other
        taken = api.post("/v1/identity/projects", headers=who["dana"], json={"spec": {"name": "bp", "domain": "acme"}})
        assert taken.status_code == 202 and "beta" not in taken.text and beta_id not in taken.text
        assert api.get("/v1/identity/projects/bp", headers=who["dana"]).json()["spec"]["domain"] == "acme"
        assert api.get("/v1/identity/projects/bp", headers=who["dana"], params={"domain": "beta"}).status_code == 404
        again = api.post("/v1/identity/projects", headers=who["dana"], json={"spec": {"name": "bp", "domain": "acme"}})
        assert again.status_code == 409 and "beta" not in again.text
        assert api.delete("/v1/identity/projects/bp", headers=who["dana"]).status_code in (202, 204)
        assert api.get("/v1/identity/projects/bp", headers=who["admin"], params={"domain": "beta"}).status_code == 200

        # the admin role however it is spelled, inherited or on the domain, or a role made for it: refused
        for role in ("admin", "Admin", "ADMIN", " admin", "admin ", "adm\u0131n", "\u0430dmin"):
            for extra in ({}, {"inherited": True}, {"project": "web"}, {"create_missing_roles": True}):
                spec = {"user": "x", "role": role, "domain": "acme", **extra}
                answer = api.put("/v1/identity/role-assignments", headers=who["dana"], json={"spec": spec})
                if role.strip().lower() == "admin" or extra.get("create_missing_roles"):
                    assert answer.status_code in (400, 403), (spec, answer.text)
                elif answer.status_code == 202:  # a look-alike is another role: a site lacking it fails the binding
                    assert answer.json()["spec"]["role"] == role
                    api.delete(f"/v1/identity/role-assignments/{answer.json()['id']}", headers=who["dana"])
                else:
                    assert answer.status_code in (400, 403), (spec, answer.text)
        # nor does a fleet admin grant the admin role spelled otherwise (roles compare without case in policies)
        for role in ("Admin", "ADMIN"):
            refused = api.put("/v1/identity/role-assignments", headers=who["admin"], json={"spec": {
                "user": "x", "project": "web", "role": role, "domain": "acme", "create_missing_roles": True}})
            assert refused.status_code == 400 and "admin" in refused.text, refused.text

        # nothing else: sites, operations, events, quotas, inventory, Kingbird
        for method, path in (("GET", "/v1/sites"), ("GET", "/v1/operations"), ("GET", "/v1/events"),
                             ("GET", "/v1/quotas/defaults"), ("GET", f"/v1/quotas/{beta_id}"),
                             ("GET", "/v1/inventory/summary"), ("GET", "/v1/keypairs"),
                             ("GET", f"/v1.0/{beta_id}/os-quota-sets/{beta_id}"),
                             ("GET", f"/v1.0/{beta_id}/os-sync"), ("POST", "/v1/identity/domains")):
            answer = api.request(method, path, headers=who["dana"], json={"spec": {"name": "z"}}
                                 if method == "POST" else None)
            assert answer.status_code == 403, (method, path, answer.text)


def test_a_domain_admin_makes_nobody_an_admin_of_a_site(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    runtime, who = setup(fleet, runtime_factory, db_url)
    far = fleet.site_names()[1]  # shares nothing with the home Keystone
    ks = fleet.state(far).keystone
    acme = ks.domain_by_name("acme")["id"]  # type: ignore[index]
    # the site's own cloud admins live in acme: a user and a group holding admin on the admin project
    root = ks.add_user("root-ops", "root-pass", None, domain_id=acme)
    ks.assignments.add((root, ks.admin_project, ks.role_id("admin")))
    admins = "g-admins"
    ks.groups[admins] = {"id": admins, "name": "cloud-admins", "domain_id": acme, "description": ""}
    ks.group_assignments.add((admins, ks.admin_project, ks.role_id("admin")))
    ks.groups["g-staff"] = {"id": "g-staff", "name": "staff", "domain_id": acme, "description": ""}
    # and what existed before Skyfleet: a project, and a grant of the admins' group on the domain
    legacy = ks.add_project("legacy", "kept", domain_id=acme)
    ks.scoped_grants.add(("domains", acme, "groups", admins, ks.role_id("reader"), False))
    placement = {"sites": [far]}
    with TestClient(create_app(runtime, start_workers=True)) as api:
        attempts = {
            "evil": {"name": "evil", "domain": "acme", "password": SECRET, "groups": ["cloud-admins"]},
            "root-ops": {"name": "root-ops", "domain": "acme", "password": SECRET},
            "fine": {"name": "fine", "domain": "acme", "password": SECRET, "groups": ["staff"]},
        }
        for name, spec in attempts.items():
            answer = api.post("/v1/identity/users", headers=who["dana"],
                              json={"spec": spec, "placement": placement, "force": True})
            assert answer.status_code == 202, answer.text

        def status(name: str) -> tuple[str, str]:
            binding = api.get(f"/v1/identity/users/{name}", headers=who["dana"]).json()["bindings"][0]
            return binding["status"], binding["error"] or ""

        wait_for(lambda: status("fine")[0] == "in-sync", "a user joins a group without the admin role")
        for name in ("evil", "root-ops"):  # a permanent failure, with the reason (the audit may look again)
            wait_for(lambda n=name: status(n)[0] == "failed" and "admin role" in status(n)[1],  # type: ignore[misc]
                     f"{name} is refused")
        evil = ks.user_by_name("evil", acme)
        assert evil is None or (admins, evil["id"]) not in ks.members
        assert ks.users[root]["_password"] == "root-pass"  # not taken over
        assert ("g-staff", ks.user_by_name("fine", acme)["id"]) in ks.members  # type: ignore[index]

        # what Skyfleet adopted (even taken over with force) is never removed, even with purge
        assert api.post("/v1/identity/projects", headers=who["dana"], json={
            "spec": {"name": "legacy", "domain": "acme", "description": "mine"}, "force": True,
            "placement": placement}).status_code == 202
        grant = api.put("/v1/identity/role-assignments", headers=who["dana"], json={
            "spec": {"group": "cloud-admins", "role": "reader", "domain": "acme"}, "placement": placement})
        assert grant.status_code == 202, grant.text
        wait_for(lambda: ks.projects[legacy]["description"] == "mine", "the project is taken over")
        for path in ("projects/legacy", f"role-assignments/{grant.json()['id']}"):
            wait_for(lambda p=path: api.get(f"/v1/identity/{p}", headers=who["dana"]).json()["bindings"][0][
                "status"] == "in-sync", f"{path} is in sync")  # type: ignore[misc]
            assert api.delete(f"/v1/identity/{path}?purge=true", headers=who["dana"]).status_code in (202, 204)
            wait_for(lambda p=path: api.get(f"/v1/identity/{p}", headers=who["dana"]).status_code == 404,
                     f"{path} is removed")  # type: ignore[misc]
        assert legacy in ks.projects and ks.projects[legacy]["enabled"] is True
        assert ("domains", acme, "groups", admins, ks.role_id("reader"), False) in ks.scoped_grants

        # the passwords the tasks set and refused to set: in no operation, event or log line
        operations = api.get("/v1/operations", headers=who["admin"], params={"limit": 1000})
        events = api.get("/v1/events", headers=who["admin"], params={"limit": 1000})
        assert operations.status_code == events.status_code == 200
        assert "sync.user" in operations.text and SECRET not in operations.text + events.text
        for op in operations.json()["operations"]:
            assert SECRET not in api.get(f"/v1/operations/{op['id']}", headers=who["admin"]).text
    assert SECRET not in caplog.text


def test_a_domain_admin_takes_over_no_fleet_admin(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    """With a fleet admin role of its own (SKYFLEET_ADMIN_ROLE ``fleet-admin``), a fleet admin whose
    user lives in acme is a site admin of the home Keystone too: never taken over, never joined."""
    runtime, who = setup(fleet, runtime_factory, db_url, admin_role="fleet-admin")
    home_site = fleet.site_names()[0]
    ks = fleet.state(home_site).keystone
    acme = ks.domain_by_name("acme")["id"]  # type: ignore[index]
    boss = ks.add_user("boss", "boss-pass", None, domain_id=acme)
    ks.assignments.add((boss, ks.admin_project, "fleet-admin"))
    ks.groups["g-bosses"] = {"id": "g-bosses", "name": "bosses", "domain_id": acme, "description": ""}
    ks.group_assignments.add(("g-bosses", ks.admin_project, "fleet-admin"))
    placement = {"sites": [home_site]}
    with TestClient(create_app(runtime, start_workers=True)) as api:
        assert api.get("/v1/sites", headers=who["admin"]).status_code == 200  # the fleet admin, by that role
        for spec in ({"name": "boss", "domain": "acme", "password": SECRET},
                     {"name": "climber", "domain": "acme", "password": SECRET, "groups": ["bosses"]}):
            answer = api.post("/v1/identity/users", headers=who["dana"],
                              json={"spec": spec, "placement": placement, "force": True})
            assert answer.status_code == 202 and "fleet-admin" not in answer.text, answer.text

        def status(name: str) -> tuple[str, str]:
            binding = api.get(f"/v1/identity/users/{name}", headers=who["dana"]).json()["bindings"][0]
            return binding["status"], binding["error"] or ""

        for name in ("boss", "climber"):
            wait_for(lambda n=name: status(n)[0] == "failed" and "admin role" in status(n)[1],  # type: ignore[misc]
                     f"{name} is refused")
        assert ks.users[boss]["_password"] == "boss-pass"
        assert not any(g == "g-bosses" and u != boss for g, u in ks.members)


def test_skyfleets_own_service_user_is_never_declared(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    """Skyfleet validates tokens as its own service user of the home Keystone, here ``svc`` of acme with
    the ``service`` role (not the sites' credential): a domain admin of acme may not take it over
    (its password would be the domain admin's, and every token validation would fail), nor its project."""
    home = fleet.state(fleet.site_names()[0]).keystone
    acme = home.add_domain("acme")
    svc = home.add_user("svc", "svc-pass", None, domain_id=acme)
    home.assignments.add((svc, home.project_by_name("service")["id"], home.role_id("service")))  # type: ignore[index]
    runtime, who = setup(fleet, runtime_factory, db_url, home_username="svc", home_password="svc-pass",
                         home_user_domain_name="acme", home_project_name="service")
    with TestClient(create_app(runtime, start_workers=False)) as api:
        for method, path, spec in (
                ("POST", "users", {"name": "svc", "domain": "acme", "password": SECRET}),
                ("PUT", "role-assignments", {"user": "svc", "role": "member", "domain": "acme"}),
                ("POST", "projects", {"name": "service", "domain": "acme"})):
            answer = api.request(method, f"/v1/identity/{path}", headers=who["dana"],
                                 json={"spec": spec, "force": True})
            assert answer.status_code == 400 and "service user" in answer.text, (path, answer.text)
        assert stored(runtime) == 0


def test_a_tenant_reaches_no_identity_and_no_other_tenant(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    runtime, who = setup(fleet, runtime_factory, db_url)
    other = "0" * 32  # a project id that is not the tenant's
    with TestClient(create_app(runtime, start_workers=False)) as api:
        for method, path in (("GET", "/v1/identity/users"), ("POST", "/v1/identity/users"),
                             ("PUT", "/v1/identity/role-assignments"), ("GET", "/v1/identity/domains")):
            answer = api.request(method, path, headers=who["tenant"], json={"spec": {"name": "t", "role": "admin",
                                                                                     "user": "t"}})
            assert answer.status_code == 403, (method, path, answer.text)
        for path in (f"/v1.0/{other}/os-quota-sets/{other}", f"/v1.0/{other}/os-sync",
                     f"/v1/quotas/{other}", f"/v1/projects/{other}/mappings"):
            answer = api.get(path, headers=who["tenant"])
            assert answer.status_code == 403 and other not in answer.json()["detail"], (path, answer.text)
        # only the first X-Auth-Token counts; a cookie named like it counts for nothing
        two = [("X-Auth-Token", who["tenant"]["X-Auth-Token"]), ("X-Auth-Token", who["admin"]["X-Auth-Token"])]
        assert api.get("/v1/sites", headers=two).status_code == 403
        api.cookies.set("X-Auth-Token", who["admin"]["X-Auth-Token"])
        assert api.get("/v1/sites").status_code == 401
        api.cookies.clear()
        # a fleet admin's dashboard session in the browser: a header wins over it (a tenant's token stays
        # a tenant, a bad token is 401, never the session); the session alone changes nothing without
        # the CSRF token or from another origin; a domain admin's session reaches its domain's identity only
        signed = api.post("/v1/auth/session", headers=who["admin"])
        assert signed.status_code == 201, signed.text
        assert api.get("/v1/sites").status_code == 200
        assert api.get("/v1/sites", headers=who["tenant"]).status_code == 403
        assert api.get("/v1/sites", headers={"X-Auth-Token": "garbage"}).status_code == 401
        body = {"spec": {"name": "csrf", "domain": "acme"}}
        assert api.post("/v1/identity/projects", json=body).status_code == 403
        assert api.post("/v1/identity/projects", json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
        assert api.post("/v1/identity/projects", json=body, headers={
            "X-CSRF-Token": signed.json()["csrf_token"], "Origin": "https://evil.example"}).status_code == 403
        assert api.get("/v1/sites", headers={"Origin": "https://evil.example"}).status_code == 403
        assert stored(runtime) == 0
        api.cookies.clear()
        assert api.get("/v1/identity/projects").status_code == 401
        domain_session = api.post("/v1/auth/session", headers=who["dana"])
        assert domain_session.status_code == 201, domain_session.text
        said = domain_session.json()
        assert (said["domain_admin"], said["fleet_admin"], said["domain_name"]) == (True, False, "acme"), said
        assert api.get("/v1/identity/projects").status_code == 200
        assert api.get("/v1/sites").status_code == 403 and api.get("/v1/inventory/servers").status_code == 403
        assert api.post("/v1/identity/projects", json=body).status_code == 403, "no CSRF token, no change"
        api.cookies.clear()

        # bad bodies on identity routes: 4xx with a reason, never 500, nothing stored
        deep = "[" * 100_000 + "]" * 100_000
        bodies: list[tuple[str, str, Any]] = [
            ("POST", "users", "{not json"), ("POST", "users", deep), ("POST", "users", '{"spec": ' + deep + "}"),
            ("POST", "users", "[]"), ("POST", "users", '"x"'), ("POST", "users", "null"),
            ("POST", "users", '{"spec": {"name": "' + "n" * 3_000_000 + '"}}'),
            ("POST", "users", '{"spec": {"name": "u", "groups": ' + str(["g"] * 5000).replace("'", '"') + "}}"),
            ("POST", "projects", '{"spec": {"name": "p", "description": {"a": 1}}}'),
            ("PUT", "role-assignments", '{"spec": {"user": "u", "group": "g", "role": "member"}}'),
            ("PUT", "role-assignments", '{"spec": {"user": ["u"], "role": "member"}}'),
            ("POST", "users", '{"spec": {"name": "u\\u0000"}}'), ("POST", "users", '{"spec": {"name": "\\ud800"}}'),
        ]
        for caller in ("admin", "dana"):
            for method, path, raw in bodies:
                answer = api.request(method, f"/v1/identity/{path}", content=raw,
                                     headers={**who[caller], "Content-Type": "application/json"})
                assert 400 <= answer.status_code < 500 and answer.json()["detail"], (caller, path, raw[:60],
                                                                                     answer.text[:300])
        assert stored(runtime) == 0


def test_a_password_is_never_shown_or_logged(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], db_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    runtime, who = setup(fleet, runtime_factory, db_url)
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(runtime, start_workers=False)) as api:
        bad = [{"spec": {"name": "u", "password": SECRET, "enabled": "maybe"}},
               {"spec": {"name": "u", "password": SECRET, "email": "a\u0007b"}},
               {"spec": {"name": "u", "password": SECRET, "bogus": 1}},
               {"spec": {"name": "u/x", "password": SECRET}},
               {"spec": {"name": "u", "password": SECRET}, "force": "maybe"},
               {"spec": {"name": "u", "password": SECRET}, "placement": {"sites": "s"}},
               {"spec": {"name": "u", "password": SECRET}, "placement": {"sites": ["nowhere"]}},
               {"spec": {"name": "u", "password": SECRET}, "unknown": True},
               {"spec": {"name": "u", "password": [SECRET]}},
               {"spec": {"name": "u", "password": SECRET + "x" * 5000}},
               [{"spec": {"name": "u", "password": SECRET}}]]
        for caller, domain in (("admin", "Default"), ("dana", "acme")):
            for body in bad:
                if isinstance(body, dict):
                    body = {**body, "spec": {**body["spec"], "domain": domain}}
                answer = api.post("/v1/identity/users", headers=who[caller], json=body)
                assert 400 <= answer.status_code < 500 and SECRET not in answer.text, (caller, body, answer.text)
        assert stored(runtime) == 0
        made = api.post("/v1/identity/users", headers=who["dana"],
                        json={"spec": {"name": "u", "domain": "acme", "password": SECRET}})
        assert made.status_code == 202 and SECRET not in made.text
        for body in ({"spec": {"password": SECRET, "enabled": "maybe"}}, {"spec": {"password": SECRET, "name": "v"}},
                     {"spec": {"password": SECRET, "domain": "beta"}}, {"spec": {"password": SECRET}, "force": 3}):
            answer = api.patch("/v1/identity/users/u", headers=who["dana"], json=body)
            assert 400 <= answer.status_code < 500 and SECRET not in answer.text, (body, answer.text)
        assert api.patch("/v1/identity/users/u", headers=who["dana"],
                         json={"spec": {"password": SECRET + "2"}}).status_code == 202
        for path in ("/v1/identity/users/u", "/v1/identity/users", "/v1/operations", "/v1/events"):
            answer = api.get(path, headers=who["admin"])
            assert answer.status_code == 200 and SECRET not in answer.text, path
        operation = api.get(f"/v1/operations/{made.json()['operation_id']}", headers=who["admin"])
        assert operation.status_code == 200 and SECRET not in operation.text
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) and SECRET not in r.getMessage() for r in caplog.records)
