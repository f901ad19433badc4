"""The RBAC matrix: every route and method of the app, called with real Keystone tokens of the
simulated home Keystone, by every kind of caller, on its own object and on another tenant's.

The expected access of each route is written here, apart from the application's own policy table,
so that loosening the policy fails this test; a route the app serves without a row here fails too.
Callers: fleet admin, tenant member, tenant reader (roles: reader only), a member of a second
tenant, a domain admin (the admin role on a domain-scoped token), a domain reader (the reader role
on a domain-scoped token), a role-less user's unscoped token, no token, a garbage token and a
revoked token. Declared identity is owned by domains the way tenants' objects are owned by projects:
the domain admin's own domain holds the first tenant's side of the seeded objects, a second domain
the second's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from skyfleet.simulator.state import DEMO_PASSWORD
from tests.functional.conftest import site_auth

PUBLIC, READ, WRITE, ADMIN = "public", "read", "write", "admin"
KB, KBS = "/v1.0/{tenant}", "/v1.0/{project_id}/os-sync"

# route -> (who may call it, whether it names a tenant's object: another tenant gets 403 or 404)
EXPECTED: dict[str, tuple[str, bool]] = {
    "GET /": (PUBLIC, False), "GET /healthz": (PUBLIC, False), "GET /metrics": (ADMIN, False),
    "POST /v1/auth/tokens": (PUBLIC, False),
    "POST /v1/auth/session": (PUBLIC, False), "GET /v1/auth/session": (PUBLIC, False),
    "DELETE /v1/auth/session": (PUBLIC, False),
    "POST /v1/sites": (ADMIN, False), "GET /v1/sites": (ADMIN, False), "GET /v1/sites/{ref}": (ADMIN, False),
    "PATCH /v1/sites/{ref}": (ADMIN, False), "DELETE /v1/sites/{ref}": (ADMIN, False),
    "POST /v1/sites/{ref}/manage": (ADMIN, False), "POST /v1/sites/{ref}/unmanage": (ADMIN, False),
    "GET /v1/events": (READ, False), "GET /v1/events/stream": (READ, False),
    "GET /v1/operations": (READ, False), "GET /v1/operations/{operation_id}": (READ, True),
    "POST /v1/operations": (ADMIN, False), "POST /v1/operations/{operation_id}/cancel": (WRITE, True),
    "POST /v1/operations/{operation_id}/retry": (WRITE, True),
    **{f"{m} /v1/{kind}{tail}": (need, obj) for kind in ("keypairs", "security-groups", "networks")
       for m, tail, need, obj in (("POST", "", WRITE, False), ("GET", "", READ, False), ("GET", "/{ref}", READ, True),
                                  ("PATCH", "/{ref}", WRITE, True), ("DELETE", "/{ref}", WRITE, True))},
    **{f"{m} /v1/images{tail}": (need, obj)
       for m, tail, need, obj in (("POST", "", WRITE, False), ("GET", "", READ, False), ("GET", "/{ref}", READ, True),
                                  ("PATCH", "/{ref}", WRITE, True), ("DELETE", "/{ref}", WRITE, True),
                                  ("POST", "/{ref}/sites/{site}", WRITE, True),
                                  ("POST", "/{ref}/rollout/{action}", WRITE, True),
                                  ("POST", "/{ref}/rollback", WRITE, True),
                                  ("PUT", "/{ref}/file", WRITE, True))},
    "POST /v1/servers": (WRITE, False), "GET /v1/servers": (READ, False),
    "GET /v1/servers/{server_id}": (READ, True), "DELETE /v1/servers/{server_id}": (WRITE, True),
    "POST /v1/servers/{server_id}/action": (WRITE, True),
    "GET /v1/servers/{server_id}/console": (READ, True), "GET /v1/servers/{server_id}/actions": (READ, True),
    "POST /v1/flavors": (ADMIN, False), "GET /v1/flavors": (READ, False), "GET /v1/flavors/{ref}": (READ, False),
    "PATCH /v1/flavors/{ref}": (ADMIN, False), "DELETE /v1/flavors/{ref}": (ADMIN, False),
    # declared identity: fleet admins, and domain admins in their own domain (DOMAIN_ADMIN below)
    **{f"{m} /v1/identity/{kind}{tail}": (ADMIN, tail != "") for kind in ("domains", "projects", "users", "groups")
       for m, tail in (("POST", ""), ("GET", ""), ("GET", "/{ref}"), ("PATCH", "/{ref}"), ("DELETE", "/{ref}"))},
    "PUT /v1/identity/role-assignments": (ADMIN, False), "GET /v1/identity/role-assignments": (ADMIN, False),
    "GET /v1/identity/role-assignments/{ref}": (ADMIN, True),
    "DELETE /v1/identity/role-assignments/{ref}": (ADMIN, True),
    f"POST {KBS}": (WRITE, True), f"GET {KBS}": (READ, True), f"GET {KBS}/active": (READ, True),
    f"GET {KBS}/{{job_id}}": (READ, True), f"DELETE {KBS}/{{job_id}}": (WRITE, True),
    "GET /v1/projects/{project_id}/mappings": (READ, True),
    "PUT /v1/projects/{project_id}/mappings/{site}": (ADMIN, False),
    "DELETE /v1/projects/{project_id}/mappings/{site}": (ADMIN, False),
    "GET /v1/quotas/defaults": (READ, False), "PUT /v1/quotas/defaults": (ADMIN, False),
    "GET /v1/quota-classes": (READ, False), "GET /v1/quota-classes/{name}": (READ, False),
    "PUT /v1/quota-classes/{name}": (ADMIN, False), "DELETE /v1/quota-classes/{name}": (ADMIN, False),
    "GET /v1/quotas/{project_id}": (READ, True), "PUT /v1/quotas/{project_id}": (ADMIN, False),
    "DELETE /v1/quotas/{project_id}": (ADMIN, False), "GET /v1/quotas/{project_id}/usage": (READ, True),
    "POST /v1/quotas/{project_id}/sync": (ADMIN, False),
    f"GET {KB}/os-quota-sets/defaults": (READ, True), f"GET {KB}/os-quota-sets/{{target}}": (READ, True),
    f"PUT {KB}/os-quota-sets/{{target}}": (ADMIN, False), f"DELETE {KB}/os-quota-sets/{{target}}": (ADMIN, False),
    f"GET {KB}/os-quota-sets/{{target}}/detail": (READ, True),
    f"PUT {KB}/os-quota-sets/{{target}}/sync": (ADMIN, False),
    f"GET {KB}/os-quota-class-sets/{{name}}": (READ, True), f"PUT {KB}/os-quota-class-sets/{{name}}": (ADMIN, False),
    f"DELETE {KB}/os-quota-class-sets/{{name}}": (ADMIN, False),
    "GET /v1/inventory/summary": (READ, False), "POST /v1/inventory/refresh": (ADMIN, False),
    "GET /v1/inventory/{kind}": (READ, False),
    "GET /v1/indicators": (READ, False), "GET /v1/indicators/names": (ADMIN, False),
    "GET /v1/addresses": (READ, False), "GET /v1/addresses/summary": (READ, False),
    "GET /v1/addresses/conflicts": (READ, False),
    "POST /v1/routing-domains": (WRITE, False), "GET /v1/routing-domains": (READ, False),
    "GET /v1/routing-domains/{ref}": (READ, True), "PATCH /v1/routing-domains/{ref}": (WRITE, True),
    "DELETE /v1/routing-domains/{ref}": (WRITE, True),
    "POST /v1/routing-domains/{ref}/vpn": (WRITE, True), "GET /v1/routing-domains/{ref}/vpn": (READ, True),
    "DELETE /v1/routing-domains/{ref}/vpn": (WRITE, True),
    "POST /v1/routing-domains/{ref}/vpn/rotate-key": (WRITE, True),
    "POST /v1/address-pools": (WRITE, False), "GET /v1/address-pools": (READ, False),
    "GET /v1/address-pools/{ref}": (READ, True), "DELETE /v1/address-pools/{ref}": (WRITE, True),
    "POST /v1/address-pools/{ref}/allocations": (WRITE, True),
    "GET /v1/address-pools/{ref}/allocations": (READ, True),
    "DELETE /v1/address-pools/{ref}/allocations/{allocation_id}": (WRITE, True),
    "GET /v1/locations": (READ, False),
}
RANK = {PUBLIC: 0, READ: 1, WRITE: 2, ADMIN: 3}
# What a domain admin reaches besides the public routes: declared identity, inside its own domain (another
# domain's object is 404, like another tenant's); of the domains, reading its own declaration only.
DOMAIN_ADMIN: frozenset[str] = frozenset({
    *(f"{m} /v1/identity/{kind}{tail}" for kind in ("projects", "users", "groups")
      for m, tail in (("POST", ""), ("GET", ""), ("GET", "/{ref}"), ("PATCH", "/{ref}"), ("DELETE", "/{ref}"))),
    "PUT /v1/identity/role-assignments", "GET /v1/identity/role-assignments",
    "GET /v1/identity/role-assignments/{ref}", "DELETE /v1/identity/role-assignments/{ref}",
    "GET /v1/identity/domains", "GET /v1/identity/domains/{ref}"})
# Routes left out of the OpenAPI document on purpose, which go through the access decision all the same:
# the dashboard's static files (public: they hold no data, the page fetches everything from /v1 with the
# user's token) and Kingbird's trailing-slash spellings (the row of the same path without the slash).
HIDDEN: dict[str, str] = {"GET /ui": PUBLIC, "GET /ui/{path}": PUBLIC, f"GET {KBS}/": READ, f"POST {KBS}/": WRITE}


@dataclass
class Caller:
    name: str
    rank: int  # the highest level it reaches (-1: no valid identity at all)
    headers: dict[str, str]
    project: str | None  # "demo" or "other" for tenants
    refused: int = 403  # the status a refusal takes for this caller
    domain: str | None = None  # whose declared identity it owns ("demo": the first domain), domain admins
    domain_admin: bool = False


def _token(auth_url: str, username: str, password: str, project: str | None, domain: str | None = None) -> str:
    """A token scoped to ``project`` (of Default), or to ``domain`` (a user of that domain), or unscoped."""
    kwargs: dict[str, Any] = {"auth_url": auth_url, "username": username, "password": password,
                              "user_domain_name": domain or "Default"}
    if project is not None:
        kwargs.update(project_name=project, project_domain_name="Default")
    elif domain is not None:
        kwargs.update(domain_name=domain)
    token: str = ks_session.Session(auth=v3.Password(**kwargs)).get_token()
    return token


@dataclass
class World:
    api: TestClient
    callers: list[Caller]
    ids: dict[str, dict[str, str]]  # object owner ("demo"/"other") -> path parameter -> value


@pytest.fixture
def world(sim: Simulator, runtime_factory: Any) -> Iterator[World]:
    home = sim.site_names()[0]
    ks = sim.fleet.get(home).keystone  # the simulator outlives one test: names unique per test
    n = uuid.uuid4().hex[:8]
    other = ks.add_project(f"other-{n}", "")
    ks.assignments.add((ks.add_user(f"olga-{n}", "olga-pass", other), other, ks.role_id("member")))
    ks.assignments.add((ks.add_user(f"rita-{n}", "rita-pass", ks.demo_project), ks.demo_project,
                        ks.role_id("reader")))
    ks.add_user(f"nobody-{n}", "nobody-pass", None)
    domains = {"demo": f"dom-a-{n}", "other": f"dom-b-{n}"}
    dom_a = ks.add_domain(domains["demo"])
    ks.add_domain(domains["other"])
    for user, role in ((f"dana-{n}", "admin"), (f"dora-{n}", "reader")):
        uid = ks.add_user(user, f"{user}-pass", None, domain_id=dom_a)
        ks.scoped_grants.add(("domains", dom_a, "users", uid, ks.role_id(role), False))
    auth = site_auth(sim, home)
    rt: Runtime = runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                                  home_username=auth["username"], home_password=auth["password"],
                                  home_project_name=auth["project_name"], fanout_rate=0)
    url = auth["auth_url"]
    revoked = _token(url, "demo", DEMO_PASSWORD, "demo")
    admin_token = _token(url, "admin", auth["password"], "admin")
    ks_session.Session().delete(url.rstrip("/") + "/auth/tokens",
                                headers={"X-Auth-Token": admin_token, "X-Subject-Token": revoked})
    callers = [
        Caller("no token", -1, {}, None, refused=401),
        Caller("garbage token", -1, {"X-Auth-Token": "gAAAAA-not-a-token"}, None, refused=401),
        Caller("revoked token", -1, {"X-Auth-Token": revoked}, None, refused=401),
        Caller("unscoped role-less", 0, {"X-Auth-Token": _token(url, f"nobody-{n}", "nobody-pass", None)}, None),
        Caller("tenant reader", 1, {"X-Auth-Token": _token(url, f"rita-{n}", "rita-pass", "demo")}, "demo"),
        Caller("second tenant", 2, {"X-Auth-Token": _token(url, f"olga-{n}", "olga-pass", f"other-{n}")}, "other"),
        Caller("tenant member", 2, {"X-Auth-Token": _token(url, "demo", DEMO_PASSWORD, "demo")}, "demo"),
        Caller("domain reader", 0, {"X-Auth-Token": _token(url, f"dora-{n}", f"dora-{n}-pass", None,
                                                           domains["demo"])}, None),
        Caller("domain admin", 0, {"X-Auth-Token": _token(url, f"dana-{n}", f"dana-{n}-pass", None,
                                                          domains["demo"])}, None, domain="demo",
               domain_admin=True),
        Caller("fleet admin", 3, {"X-Auth-Token": admin_token}, None),
    ]
    with TestClient(create_app(rt, start_workers=False)) as api:
        world = World(api, callers, {})
        world.ids = _seed(api, sim, callers, {"demo": ks.demo_project, "other": other}, domains)
        yield world


def _seed(api: TestClient, sim: Simulator, callers: list[Caller], projects: dict[str, str],
          domains: dict[str, str]) -> dict[str, dict[str, str]]:
    """One object of each kind per tenant (keypair, security group, os-sync job; quotas by admin), and
    declared identity in each tenant's side's domain (by the fleet admin)."""
    by_name = {c.name: c for c in callers}
    admin = by_name["fleet admin"].headers
    site = sim.site_names()[1]
    assert api.post("/v1/sites", json={"name": "s1", "auth": site_auth(sim, site)}, headers=admin).status_code == 201
    assert api.post("/v1/flavors", json={"spec": {"name": "fl", "vcpus": 1, "ram": 64}}, headers=admin).status_code \
        == 202
    ids: dict[str, dict[str, str]] = {}
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl rbac"
    for owner, caller in (("demo", by_name["tenant member"]), ("other", by_name["second tenant"])):
        pid = projects[owner]
        kp = api.post("/v1/keypairs", json={"spec": {"name": f"kp-{owner}", "public_key": key}},
                      headers=caller.headers)
        sg = api.post("/v1/security-groups", json={"spec": {"name": f"sg-{owner}"}}, headers=caller.headers)
        job = api.post(f"/v1.0/{pid}/os-sync", headers=caller.headers, json={"resource_set": {
            "resource_type": "keypair", "resources": [f"kp-{owner}"], "source": "s1", "target": ["s1-x"]}})
        im = api.post("/v1/images", json={"name": f"im-{owner}", "source": {"site": "s1", "image_id": "x"},
                                          "mode": "lazy"}, headers=caller.headers)
        domain = api.post("/v1/routing-domains", json={"name": f"rd-{owner}", "members": [{"project": pid}]},
                          headers=caller.headers)
        pool = api.post("/v1/address-pools", json={"name": f"pool-{owner}", "cidr": "10.128.0.0/9"},
                        headers=caller.headers)
        prefix = api.post(f"/v1/address-pools/{pool.json().get('id')}/allocations",
                          json={"site": "s1", "prefix_length": 24}, headers=caller.headers)
        assert pool.status_code == 201 and prefix.status_code == 201, (pool.text, prefix.text)
        net = api.post("/v1/networks", json={"name": f"net-{owner}", "pool": f"pool-{owner}",
                                             "placement": {"sites": ["s1"]}}, headers=caller.headers)
        assert net.status_code == 202, net.text
        assert kp.status_code == 202 and sg.status_code == 202 and im.status_code == 202, (kp.text, sg.text, im.text)
        assert domain.status_code == 201, domain.text
        assert api.put(f"/v1/quotas/{pid}", json={"limits": {"cores": 10}}, headers=admin).status_code == 200
        ids[owner] = {"project_id": pid, "tenant": pid, "target": pid, "operation_id": kp.json()["operation_id"],
                      "job_id": job.json().get("job_status", {}).get("id", "no-such-job"),
                      "ref:keypairs": f"kp-{owner}", "ref:security-groups": f"sg-{owner}",
                      "ref:images": f"im-{owner}", "ref:routing-domains": domain.json()["id"],
                      "ref:address-pools": pool.json()["id"], "ref:networks": f"net-{owner}",
                      "allocation_id": str(prefix.json()["id"])}
        domain = domains[owner]
        for path, spec in (("domains", {"name": domain}), ("projects", {"name": f"p-{owner}", "domain": domain}),
                           ("users", {"name": f"u-{owner}", "domain": domain}),
                           ("groups", {"name": f"g-{owner}", "domain": domain})):
            declared = api.post(f"/v1/identity/{path}", json={"spec": spec}, headers=admin)
            assert declared.status_code == 202, declared.text
            ids[owner][f"ref:identity/{path}"] = declared.json()["id"]
        grant = api.put("/v1/identity/role-assignments", headers=admin, json={"spec": {
            "user": f"u-{owner}", "project": f"p-{owner}", "role": "member", "domain": domain}})
        assert grant.status_code == 202, grant.text
        ids[owner]["ref:identity/role-assignments"] = grant.json()["id"]
    return ids


def _path(template: str, values: dict[str, str]) -> str:
    parts = template.split("/")
    kind = "/".join(parts[2:4]) if template.startswith("/v1/identity/") else parts[2] if len(parts) > 2 and \
        template.startswith("/v1/") else ""
    fixed = {"ref": values.get(f"ref:{kind}", "s1" if kind == "sites" else "fl"), "site": "s1", "name": "default",
             "kind": "servers", "action": "pause", "server_id": "no-such-server"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1)) or fixed[m.group(1)], template)


def _routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, from its OpenAPI document (the documentation pages aside)."""
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


def test_every_route_has_a_row_and_no_row_is_stale(world: World) -> None:
    served = {f"{m} {p}" for m, p in _routes(world.api.app)}
    assert served - set(EXPECTED) == set(), "routes without a row in the RBAC matrix"
    assert set(EXPECTED) - served == set(), "rows of routes the app no longer serves"


def _api_routes(routes: list[Any]) -> Iterator[Any]:
    """Every APIRoute of the app, inside included routers too (FastAPI wraps each included router)."""
    from fastapi.routing import APIRoute

    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_routes_outside_the_schema_are_listed_and_public(world: World) -> None:
    from skyfleet.api.access import POLICY, Need

    hidden = {f"{m} {r.path_format}" for r in _api_routes(world.api.app.routes)
              if not r.include_in_schema for m in r.methods}
    assert hidden == set(HIDDEN), "routes outside the OpenAPI document without a row here"
    for key, need in HIDDEN.items():
        assert POLICY[key.rstrip("/")].need == Need(RANK[need]), key
    for caller in world.callers:  # every caller, even with a bad token, gets the same page and no data
        page = world.api.get("/ui/", headers=caller.headers)
        assert page.status_code == 200 and "Skyfleet" in page.text, (caller.name, page.status_code)
        assert world.api.get("/ui", headers=caller.headers, follow_redirects=False).status_code == 308


def test_matrix(world: World) -> None:
    api, failures, calls = world.api, [], 0
    routes = sorted(_routes(api.app), key=lambda r: (r[0] == "DELETE", r[1]))  # deletes last
    for method, template in routes:
        need, objectual = EXPECTED[f"{method} {template}"]
        names_project = "{project_id}" in template or "{tenant}" in template
        for caller in world.callers:
            for owner in ("demo", "other") if objectual else ("demo",):
                response = api.request(method, _path(template, world.ids[owner]), headers=caller.headers,
                                       json={} if method in ("POST", "PUT", "PATCH") else None)
                calls += 1
                status, where = response.status_code, f"{caller.name}: {method} {template} ({owner}'s)"
                allowed = need == PUBLIC or caller.rank >= RANK[need] or \
                    (caller.domain_admin and f"{method} {template}" in DOMAIN_ADMIN)
                mine = caller.domain if template.startswith("/v1/identity/") else caller.project
                foreign = objectual and mine is not None and mine != owner
                if status >= 500:
                    failures.append(f"{where}: {status}")
                elif not allowed and status != caller.refused:
                    failures.append(f"{where}: {status}, expected {caller.refused}")
                elif allowed and foreign and names_project and status != 403:
                    failures.append(f"{where}: {status}, naming another project must be 403")
                elif allowed and foreign and status not in (403, 404):
                    failures.append(f"{where}: {status}, another tenant's object must be 403/404")
                elif allowed and not foreign and status in (401, 403):
                    failures.append(f"{where}: {status} {response.text[:120]}")
                if foreign and world.ids[owner]["project_id"] in response.text and status != 200:
                    failures.append(f"{where}: the error names the other project")
    print(f"RBAC matrix: {len(routes)} routes, {len(world.callers)} callers, {calls} requests")
    assert calls > 400
    assert failures == [], "\n".join(failures)
