"""Networks declared once, on three simulated sites that share nothing, as the tenant of a real
(simulated) home Keystone: each site gets its own prefix of the tenant's pool and a network, subnet
and router in the tenant's project (what the tenant's own openstacksdk sees there); a subnet deleted by
hand is made again by the drift audit; bad requests are refused with the reason; delete removes what
Skyfleet made and gives the prefixes back to the pool."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.drivers.openstack import networkapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.kinds import SiteContext, get_kind, load_builtin
from skyfleet.reconcile.sync_audit import run_sync_audit
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites
from tests.functional.conftest import site_auth, token_for

Fleet = tuple[Simulator, Runtime, TestClient, Engine, dict[str, str], dict[str, str]]


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime]) -> Iterator[Fleet]:
    """Site 0 is the home Keystone; sites 1-3 are registered, each with an external network "public"."""
    sim = Simulator(sites=4)
    sim.start()
    try:
        home = site_auth(sim, sim.site_names()[0])
        runtime = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                                  home_username=home["username"], home_password=home["password"],
                                  home_project_name=home["project_name"])
        placed = sim.site_names()[1:]
        register_sites(runtime.factory, runtime.box, sim, names=placed)
        for name in placed:
            admin = openstack.connect(**sim.cloud(name))
            ext = admin.network.create_network(name="public", is_router_external=True)
            admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr="198.51.100.0/24", enable_dhcp=False)
        engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
        tenant = {"X-Auth-Token": token_for(sim, sim.site_names()[0], "demo")}
        admin_headers = {"X-Auth-Token": token_for(sim, sim.site_names()[0], "admin")}
        with TestClient(create_app(runtime, start_workers=False)) as client:
            yield sim, runtime, client, engine, tenant, admin_headers
    finally:
        sim.stop()


def run(runtime: Runtime, engine: Engine) -> None:
    """Run every task now, retries included (no waiting on backoff)."""
    for _ in range(5):
        with transaction(runtime.factory) as session:
            session.execute(update(Task).where(Task.state == "pending").values(next_attempt_at=utcnow()))
        if engine.run_until_idle() == 0:
            return


def as_tenant(sim: Simulator, site: str) -> Any:
    return openstack.connect(**sim.cloud(site, user="demo"))


def marked(conn: Any, resource_id: str) -> dict[str, Any]:
    """What the tenant sees in its project of the objects Skyfleet made for the declared network."""
    mark = f"skyfleet:{resource_id}"
    pid = conn.current_project_id
    nets = [n for n in conn.network.networks(project_id=pid) if n.description == mark]
    subnets = [s for s in conn.network.subnets(project_id=pid) if s.description == mark]
    routers = [r for r in conn.network.routers(project_id=pid) if r.description == mark]
    return {"networks": nets, "subnets": subnets, "routers": routers}


def allocations(client: TestClient, headers: dict[str, str]) -> list[str]:
    answer = client.get("/v1/address-pools/wan/allocations", headers=headers)
    assert answer.status_code == 200, answer.text
    return sorted(a["cidr"] for a in answer.json()["items"])


def test_network_declared_once_on_three_sites(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, _admin = fleet
    sites = sim.site_names()[1:]
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.60.0.0/22"},
                       headers=tenant).status_code == 201
    made = client.post("/v1/networks", headers=tenant, json={
        "name": "app", "pool": "wan", "prefix_length": 24, "dns_nameservers": ["192.0.2.53", "2001:db8::53"],
        "router": {"external_network": "public"}})
    assert made.status_code == 202, made.text
    body = made.json()
    prefixes = {p["site_name"]: p["cidr"] for p in body["options"]["prefixes"].values()}
    assert set(prefixes) == set(sites)
    nets = [ipaddress.ip_network(c) for c in prefixes.values()]
    assert all(n.subnet_of(ipaddress.ip_network("10.60.0.0/22")) for n in nets)  # type: ignore[arg-type]
    assert len(set(nets)) == 3 and not any(a.overlaps(b) for a in nets for b in nets if a != b)
    assert allocations(client, tenant) == sorted(prefixes.values())
    run(runtime, engine)
    shown = client.get("/v1/networks/app", headers=tenant).json()
    assert shown["counts"] == {"in-sync": 3}, shown["bindings"]
    rid = shown["id"]
    for site in sites:  # the tenant's own client sees it all in its project
        conn = as_tenant(sim, site)
        seen = marked(conn, rid)
        assert [n.name for n in seen["networks"]] == ["app"]
        (subnet,) = seen["subnets"]
        assert subnet.cidr == prefixes[site] and subnet.is_dhcp_enabled
        assert subnet.dns_nameservers == ["192.0.2.53", "2001:db8::53"]
        (router,) = seen["routers"]
        assert router.external_gateway_info["network_id"] == conn.network.find_network("public").id
        ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
        assert [p.fixed_ips[0]["subnet_id"] for p in ports] == [subnet.id]
    assert [n["name"] for n in client.get("/v1/networks", headers=tenant).json()["resources"]] == ["app"]

    # drift: the tenant deletes the subnet on one site by hand; the audit makes it again, same prefix
    victim = sites[1]
    conn = as_tenant(sim, victim)
    (subnet,) = marked(conn, rid)["subnets"]
    router = marked(conn, rid)["routers"][0]
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_subnet(subnet)
    assert marked(conn, rid)["subnets"] == []
    assert run_sync_audit(runtime.factory) == 1
    run(runtime, engine)
    (again,) = marked(conn, rid)["subnets"]
    assert again.cidr == prefixes[victim] and again.id != subnet.id
    ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
    assert [p.fixed_ips[0]["subnet_id"] for p in ports] == [again.id]
    assert client.get("/v1/networks/app", headers=tenant).json()["counts"] == {"in-sync": 3}
    events = client.get("/v1/events", params={"kind": "sync.drift_repaired"}, headers=tenant).json()
    assert any(victim in e["message"] and "subnet" in e["message"] for e in events["events"]), events

    # PATCH: DHCP off and other nameservers on every site
    patched = client.patch("/v1/networks/app", headers=tenant, json={"enable_dhcp": False,
                                                                     "dns_nameservers": ["192.0.2.1"]})
    assert patched.status_code == 202, patched.text
    run(runtime, engine)
    for site in sites:
        (sub,) = marked(as_tenant(sim, site), rid)["subnets"]
        assert (sub.is_dhcp_enabled, sub.dns_nameservers) == (False, ["192.0.2.1"])

    # delete: gone on every site, the prefixes back in the pool
    assert client.delete("/v1/networks/app", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks", headers=tenant).json()["resources"] == []
    assert client.get("/v1/networks/app", headers=tenant).status_code == 404
    for site in sites:
        assert marked(as_tenant(sim, site), rid) == {"networks": [], "subnets": [], "routers": []}
    assert allocations(client, tenant) == []


def test_bad_requests_are_refused_with_the_reason(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, admin = fleet
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.61.0.0/23"},
                       headers=tenant).status_code == 201
    unknown = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "nope"})
    assert unknown.status_code == 404 and "no address pool 'nope'" in unknown.json()["detail"]
    dns = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan", "dns_nameservers": ["x.y"]})
    assert dns.status_code == 422 and "dns_nameservers" in dns.text
    no_gw = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan", "gateway": False})
    assert no_gw.status_code == 422 and "a router needs the subnet's gateway" in no_gw.text
    length = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan", "prefix_length": 22})
    assert length.status_code == 400 and "prefix_length: 22 is outside 23..32" in length.json()["detail"]
    other = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan",
                                                              "project": {"id": "someone-else"}})
    assert other.status_code == 403
    # a /23 holds two /24s: three sites ask for three, nothing is taken
    short = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan"})
    assert short.status_code == 409 and "has no free /24 left" in short.json()["detail"], short.text
    assert allocations(client, tenant) == []
    two = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan",
                                                            "placement": {"sites": sim.site_names()[1:3]},
                                                            "router": {"enabled": False}, "enable_dhcp": False})
    assert two.status_code == 202, two.text
    again = client.post("/v1/networks", headers=tenant, json={"name": "n", "pool": "wan",
                                                              "placement": {"sites": sim.site_names()[3:]}})
    assert again.status_code == 409  # the pool is full now (and the name is taken)
    run(runtime, engine)
    body = client.get("/v1/networks/n", headers=tenant).json()
    assert body["counts"] == {"in-sync": 2}
    conn = as_tenant(sim, sim.site_names()[1])
    assert marked(conn, body["id"])["routers"] == []
    assert client.get("/v1/networks/n", headers=admin).status_code == 200  # fleet admins see every project's
    assert client.delete("/v1/networks/n", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks/n", headers=tenant).status_code == 404
    assert allocations(client, tenant) == []
    # a fleet admin declares a network in the tenant's project, from the tenant's pool
    home = openstack.connect(**sim.cloud(sim.site_names()[0], user="demo"))
    ops = client.post("/v1/networks", headers=admin, json={
        "name": "ops", "pool": "wan", "placement": {"sites": sim.site_names()[3:]}, "router": {"enabled": False},
        "project": {"id": home.current_project_id, "name": "demo", "domain_name": "Default"}})
    assert ops.status_code == 202, ops.text
    run(runtime, engine)
    mine = client.get("/v1/networks/ops", headers=tenant).json()  # the tenant's own now
    assert mine["counts"] == {"in-sync": 1} and mine["project_id"] == home.current_project_id
    (subnet,) = marked(as_tenant(sim, sim.site_names()[3]), mine["id"])["subnets"]
    assert subnet.cidr == allocations(client, tenant)[0]


def test_a_retry_after_a_crash_completes_the_half_made_network(sim: Simulator) -> None:
    """An attempt cut short after it made the network (and nothing else): the next attempt finds the
    network by Skyfleet's mark and makes only the subnet and router; a second run changes nothing."""
    load_builtin()
    site = sim.site_names()[1]
    ctx = SiteContext(site_id=site, site_name=site, auth=site_auth(sim, site), timeout=5, pool=SitePool())
    kind = get_kind("sync.network")
    payload = kind.payload.model_validate({"name": "half", "pool": "wan", "prefix_length": 24, "cidr": "10.62.0.0/24",
                                           "resource_id": "r-half", "project": {"name": "demo"}})
    conn = as_tenant(sim, site)
    networkapi.create_network(ctx.connection(), name="half", project_id=conn.current_project_id,
                              mark="skyfleet:r-half")  # what the lost attempt did
    first = kind.run(ctx, payload.model_dump())
    assert first["changed"] and first["detail"] == "subnet, router, interface", first
    seen = marked(conn, "r-half")
    assert len(seen["networks"]) == 1 and [s.cidr for s in seen["subnets"]] == ["10.62.0.0/24"]
    assert len(seen["routers"]) == 1
    assert kind.run(ctx, payload.model_dump())["changed"] is False
    done = kind.run(ctx, {**payload.model_dump(), "action": "delete"})
    assert done["status"] == "deleted" and marked(conn, "r-half") == {"networks": [], "subnets": [], "routers": []}


def test_a_site_that_joins_the_placement_gets_its_prefix_at_the_audit(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, admin = fleet
    first, second = sim.site_names()[1:3]
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.63.0.0/22"},
                       headers=tenant).status_code == 201

    def label(site: str, labels: dict[str, str]) -> None:
        answer = client.patch(f"/v1/sites/{site}", json={"labels": labels}, headers=admin)
        assert answer.status_code == 200, answer.text

    label(first, {"tier": "edge"})
    made = client.post("/v1/networks", headers=tenant, json={"name": "grow", "pool": "wan",
                                                             "placement": {"selector": "tier=edge"}})
    assert made.status_code == 202 and len(made.json()["options"]["prefixes"]) == 1, made.text
    run(runtime, engine)
    label(second, {"tier": "edge"})  # a site joins: the audit takes its prefix and makes the network
    assert run_sync_audit(runtime.factory) == 1
    run(runtime, engine)
    body = client.get("/v1/networks/grow", headers=tenant).json()
    assert body["counts"] == {"in-sync": 2}, body
    cidrs = {p["site_name"]: p["cidr"] for p in body["options"]["prefixes"].values()}
    assert sorted(cidrs.values()) == allocations(client, tenant) == ["10.63.0.0/24", "10.63.1.0/24"]
    (subnet,) = marked(as_tenant(sim, second), body["id"])["subnets"]
    assert subnet.cidr == cidrs[second]
    label(first, {})  # a site leaves: its copy is deleted, then its prefix released
    assert run_sync_audit(runtime.factory) == 1
    run(runtime, engine)
    body = client.get("/v1/networks/grow", headers=tenant).json()
    assert [b["site_name"] for b in body["bindings"]] == [second]
    assert allocations(client, tenant) == [cidrs[second]]
    assert marked(as_tenant(sim, first), body["id"])["networks"] == []


def test_network_declared_with_explicit_cidrs(fleet: Fleet) -> None:
    """Each site's CIDR given outright instead of a pool: the tenant sees each site's subnet with its
    CIDR; the CIDRs are checked (one per placed site, network addresses, no overlap); a site that joins
    needs its CIDR in the same PATCH; no pool is touched, at declaration or at delete."""
    sim, runtime, client, engine, tenant, admin = fleet
    sites = sim.site_names()[1:]
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.64.0.0/22"},
                       headers=tenant).status_code == 201
    held = client.post("/v1/address-pools/wan/allocations", json={"site": sites[0], "prefix_length": 24},
                       headers=tenant)
    assert held.status_code == 201, held.text
    before = allocations(client, tenant)

    def declare(**body: Any) -> Any:
        return client.post("/v1/networks", headers=tenant, json={"name": "fixed", **body})

    two = {"sites": sites[:2]}
    refusals = {
        "neither": declare(placement=two),
        "both": declare(pool="wan", cidrs={sites[0]: "10.65.0.0/24"}, placement=two),
        "missing": declare(cidrs={sites[0]: "10.65.0.0/24"}, placement=two),
        "host bits": declare(cidrs={sites[0]: "10.65.0.1/24", sites[1]: "10.65.1.0/24"}, placement=two),
        "overlap": declare(cidrs={sites[0]: "10.65.0.0/23", sites[1]: "10.65.1.0/24"}, placement=two),
        "versions": declare(cidrs={sites[0]: "10.65.0.0/24", sites[1]: "fd00:65::/64"}, placement=two),
        "unknown site": declare(cidrs={sites[0]: "10.65.0.0/24", "nowhere": "10.65.1.0/24"}, placement=two),
        "dual stack": declare(cidrs={sites[0]: "10.65.0.0/24", sites[1]: "10.65.1.0/24"}, placement=two,
                              second_subnet={"pool": "wan"}),
        "length": declare(cidrs={sites[0]: "10.65.0.0/24", sites[1]: "10.65.1.0/24"}, placement=two,
                          prefix_length=24),
    }
    assert {k: r.status_code for k, r in refusals.items()} == dict.fromkeys(refusals, 422)
    reasons = {k: r.text for k, r in refusals.items()}
    assert "exactly one of pool" in reasons["neither"] and "exactly one of pool" in reasons["both"]
    assert f"no CIDR for the placed site {sites[1]}" in reasons["missing"]
    assert "has host bits set" in reasons["host bits"] and "did you mean 10.65.0.0/24" in reasons["host bits"]
    assert f"{sites[0]} (10.65.0.0/23) and {sites[1]} (10.65.1.0/24) overlap" in reasons["overlap"]
    assert "one IP version" in reasons["versions"] and "no site 'nowhere'" in reasons["unknown site"]
    assert "second_subnet goes with pool" in reasons["dual stack"]
    assert "prefix_length goes with pool" in reasons["length"]
    assert client.get("/v1/networks", headers=tenant).json()["resources"] == []

    cidrs = {sites[0]: "10.65.0.0/24", sites[1]: "10.65.1.0/25", sites[2]: "192.168.7.0/24"}  # one is a future site's
    made = declare(cidrs=cidrs, placement=two, dns_nameservers=["192.0.2.53"])
    assert made.status_code == 202, made.text
    body = made.json()
    assert {p["site_name"]: p["cidr"] for p in body["options"]["prefixes"].values()} == \
        {s: cidrs[s] for s in sites[:2]}
    assert all("allocation_id" not in p for p in body["options"]["prefixes"].values())
    assert allocations(client, tenant) == before  # nothing taken from any pool
    run(runtime, engine)
    shown = client.get("/v1/networks/fixed", headers=tenant).json()
    assert shown["counts"] == {"in-sync": 2}, shown["bindings"]
    for site in sites[:2]:  # the tenant's own openstacksdk sees each site's subnet with its CIDR
        (subnet,) = marked(as_tenant(sim, site), shown["id"])["subnets"]
        assert subnet.cidr == cidrs[site] and subnet.dns_nameservers == ["192.0.2.53"]

    # a site joins: with no CIDR for it, 409; with one that overlaps, 422; with its own, it is made
    fresh = client.post("/v1/networks", headers=tenant, json={
        "name": "later", "cidrs": {sites[0]: "10.66.0.0/24"}, "placement": {"sites": sites[:1]}})
    assert fresh.status_code == 202, fresh.text
    no_cidr = client.patch("/v1/networks/later", headers=tenant, json={"placement": {"sites": sites[:2]}})
    assert no_cidr.status_code == 409 and f"site {sites[1]} has no CIDR" in no_cidr.json()["detail"], no_cidr.text
    clash = client.patch("/v1/networks/later", headers=tenant, json={"placement": {"sites": sites[:2]},
                                                                      "cidrs": {sites[1]: "10.66.0.128/25"}})
    assert clash.status_code == 422 and "overlap" in clash.text, clash.text
    changed = client.patch("/v1/networks/later", headers=tenant, json={"cidrs": {sites[0]: "10.66.9.0/24"}})
    assert changed.status_code == 422 and "cannot change" in changed.text, changed.text
    joined = client.patch("/v1/networks/later", headers=tenant, json={"placement": {"sites": sites[:2]},
                                                                       "cidrs": {sites[1]: "10.66.1.0/24"}})
    assert joined.status_code == 202, joined.text
    pooled = client.patch("/v1/networks/fixed", headers=tenant, json={"placement": {"sites": sites}})
    assert pooled.status_code == 202, pooled.text  # its third site's CIDR was given at declaration
    run(runtime, engine)
    later = client.get("/v1/networks/later", headers=tenant).json()
    assert later["counts"] == {"in-sync": 2}, later["bindings"]
    (subnet,) = marked(as_tenant(sim, sites[1]), later["id"])["subnets"]
    assert subnet.cidr == "10.66.1.0/24"
    shown = client.get("/v1/networks/fixed", headers=tenant).json()
    assert shown["counts"] == {"in-sync": 3}, shown["bindings"]
    (subnet,) = marked(as_tenant(sim, sites[2]), shown["id"])["subnets"]
    assert subnet.cidr == "192.168.7.0/24"

    # a site that joins without a request (a selector now matches it) and has no CIDR: its binding fails
    assert client.patch(f"/v1/sites/{sites[2]}", json={"labels": {"tier": "edge"}}, headers=admin).status_code == 200
    edge = client.post("/v1/networks", headers=tenant, json={
        "name": "edge", "cidrs": {sites[0]: "10.67.0.0/24"}, "placement": {"sites": sites[:1]}})
    assert edge.status_code == 202, edge.text
    assert client.patch("/v1/networks/edge", headers=tenant, json={"cidrs": {sites[1]: "10.67.1.0/24"}}
                        ).status_code == 202  # kept for when it joins
    assert client.patch(f"/v1/sites/{sites[0]}", json={"labels": {"tier": "edge"}}, headers=admin).status_code == 200
    assert client.patch("/v1/networks/edge", headers=tenant, json={"placement": {"selector": "tier=edge"}}
                        ).status_code == 409  # sites[2] has none: the request is refused
    assert client.patch(f"/v1/sites/{sites[2]}", json={"labels": {}}, headers=admin).status_code == 200
    assert client.patch("/v1/networks/edge", headers=tenant, json={"placement": {"selector": "tier=edge"}}
                        ).status_code == 202
    assert client.patch(f"/v1/sites/{sites[2]}", json={"labels": {"tier": "edge"}}, headers=admin).status_code == 200
    run_sync_audit(runtime.factory)
    run(runtime, engine)
    edge_body = client.get("/v1/networks/edge", headers=tenant).json()
    status = {b["site_name"]: (b["status"], b.get("error") or "") for b in edge_body["bindings"]}
    assert status[sites[0]][0] == "in-sync" and status[sites[2]][0] == "failed", status
    assert f"no CIDR was given for site {sites[2]}" in status[sites[2]][1], status
    assert client.delete("/v1/networks/edge", headers=tenant).status_code == 202

    # delete: gone on every site, and the pool is as it was
    for name in ("fixed", "later"):
        assert client.delete(f"/v1/networks/{name}", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks", headers=tenant).json()["resources"] == []
    for site in sites:
        assert marked(as_tenant(sim, site), shown["id"]) == {"networks": [], "subnets": [], "routers": []}
    assert allocations(client, tenant) == before
