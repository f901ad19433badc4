"""A network declared with explicit CIDRs, on simulated sites, against the address space Skyfleet
manages: a pool's allocation (409 naming it), a CIDR straddling a pool (409), a CIDR inside a pool and
free there (reserved in the pool, given back at delete), a subnet of the tenant's own networks on
another site (409 naming it; allow_overlap for a deliberate reuse, shown in GET), a network declared
a moment ago that the inventory does not show yet (409), another project's network in the tenant's
routing domain (409 without its details for the tenant, with them for a fleet admin), the same
checks on PATCH for a site that joins."""

from __future__ import annotations

from typing import Any

import openstack

from skyfleet.reconcile.inventory import refresh_fleet
from tests.functional.test_networks_on_simulator import Fleet, as_tenant, fleet, marked, run

__all__ = ["fleet"]


def pool_cidrs(client: Any, headers: dict[str, str], pool: str) -> list[str]:
    answer = client.get(f"/v1/address-pools/{pool}/allocations", headers=headers)
    assert answer.status_code == 200, answer.text
    return sorted(a["cidr"] for a in answer.json()["items"])


def test_explicit_cidrs_are_checked_against_the_managed_address_space(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, admin = fleet
    sites = sim.site_names()[1:]

    def declare(name: str, cidrs: dict[str, str], headers: dict[str, str] = tenant, **body: Any) -> Any:
        return client.post("/v1/networks", headers=headers, json={
            "name": name, "cidrs": cidrs, "placement": {"sites": list(cidrs)[:1]}, **body})

    # a pool's allocations: refused, naming the allocation (and the declared network holding it)
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.70.0.0/16"},
                       headers=tenant).status_code == 201
    held = client.post("/v1/address-pools/wan/allocations", json={"site": sites[0], "prefix_length": 24},
                       headers=tenant)
    assert held.status_code == 201 and held.json()["cidr"] == "10.70.0.0/24", held.text
    pooled = client.post("/v1/networks", headers=tenant, json={"name": "pooled", "pool": "wan",
                                                               "placement": {"sites": sites[1:2]}})
    assert pooled.status_code == 202, pooled.text
    clash = declare("app", {sites[0]: "10.70.0.0/23"})
    assert clash.status_code == 409, clash.text
    assert clash.json()["detail"] == (
        f"cidrs.{sites[0]}: 10.70.0.0/23 overlaps 10.70.0.0/24, allocated from the address pool 'wan' "
        f"(10.70.0.0/16) to site {sites[0]} (allocation {held.json()['id']}); choose another CIDR")
    clash = declare("app", {sites[0]: "10.70.1.0/24"})
    assert clash.status_code == 409 and "for the network 'pooled'" in clash.json()["detail"], clash.text

    # inside a pool and free there: reserved, so the pool never hands it out; outside its edge: 409
    assert client.post("/v1/address-pools", json={"name": "edge", "cidr": "10.80.0.0/22"},
                       headers=tenant).status_code == 201
    straddle = declare("app", {sites[0]: "10.80.0.0/21"})
    assert straddle.status_code == 409 and "straddles the edge of the address pool 'edge'" in straddle.text
    made = client.post("/v1/networks", headers=tenant, json={
        "name": "app", "cidrs": {sites[0]: "10.80.1.0/24", sites[1]: "10.80.2.0/24"},
        "placement": {"sites": sites[:2]}})
    assert made.status_code == 202, made.text
    reserved = made.json()["options"]["reservations"]
    assert sorted(r["cidr"] for r in reserved.values()) == ["10.80.1.0/24", "10.80.2.0/24"]
    assert {r["pool"] for r in reserved.values()} == {"edge"}
    assert pool_cidrs(client, tenant, "edge") == ["10.80.1.0/24", "10.80.2.0/24"]
    handed = [client.post("/v1/address-pools/edge/allocations", json={"site": sites[2], "prefix_length": 24},
                          headers=tenant) for _ in range(3)]
    assert [h.status_code for h in handed] == [201, 201, 409], [h.text for h in handed]
    assert [h.json()["cidr"] for h in handed[:2]] == ["10.80.0.0/24", "10.80.3.0/24"]
    for h in handed[:2]:
        assert client.delete(f"/v1/address-pools/edge/allocations/{h.json()['id']}", headers=tenant
                             ).status_code == 204
    run(runtime, engine)
    shown = client.get("/v1/networks/app", headers=tenant).json()
    assert shown["counts"] == {"in-sync": 2}, shown["bindings"]
    (subnet,) = marked(as_tenant(sim, sites[1]), shown["id"])["subnets"]
    assert subnet.cidr == "10.80.2.0/24"

    # the declared network's own CIDRs, before any inventory refresh shows them
    early = declare("copy", {sites[2]: "10.80.2.128/25"})
    assert early.status_code == 409, early.text
    early = declare("copy", {sites[2]: "10.70.1.0/25"})  # pooled's prefix: the pool names it first
    assert early.status_code == 409 and "'pooled'" in early.text, early.text

    # a subnet of the tenant's own networks on another site, as the inventory shows it
    conn = as_tenant(sim, sites[2])
    legacy = conn.network.create_network(name="legacy")
    conn.network.create_subnet(network_id=legacy.id, ip_version=4, cidr="10.90.1.0/24")
    project = client.get("/v1/networks/app", headers=tenant).json()["project_id"]
    for site in sites:  # where the tenant's project lives on these sites, which share nothing
        mapped = client.put(f"/v1/projects/{project}/mappings/{site}", headers=admin,
                            json={"remote_project_id": as_tenant(sim, site).current_project_id})
        assert mapped.status_code == 200, mapped.text
    refresh_fleet(runtime.factory, box=runtime.box, concurrency=4, timeout=5, full=True)
    mine = declare("reuse", {sites[0]: "10.90.0.0/23"})
    assert mine.status_code == 409, mine.text
    assert mine.json()["detail"].startswith(
        f"cidrs.{sites[0]}: 10.90.0.0/23 overlaps the subnet 10.90.1.0/24 of the network 'legacy' in site "
        f"{sites[2]} (a network of the project, as of the last inventory refresh)"), mine.text
    deliberate = declare("reuse", {sites[0]: "10.90.0.0/23"}, allow_overlap=True)
    assert deliberate.status_code == 202, deliberate.text
    assert client.get("/v1/networks/reuse", headers=tenant).json()["options"]["allow_overlap"] is True
    assert declare("free", {sites[0]: "10.91.0.0/24"}).status_code == 202

    # PATCH: a site that joins with a CIDR in use is refused; with a free one it joins
    joins = client.patch("/v1/networks/free", headers=tenant, json={
        "placement": {"sites": sites[:2]}, "cidrs": {sites[1]: "10.90.1.0/24"}})
    assert joins.status_code == 409 and "of the network 'reuse'" in joins.text, joins.text
    joins = client.patch("/v1/networks/free", headers=tenant, json={
        "placement": {"sites": sites[:2]}, "cidrs": {sites[1]: "10.91.1.0/24"}})
    assert joins.status_code == 202, joins.text

    # another project's network in the tenant's routing domain: the tenant learns nothing of it
    other = openstack.connect(**sim.cloud(sites[2]))
    hidden = other.network.create_network(name="admins-secret")
    other.network.create_subnet(network_id=hidden.id, ip_version=4, cidr="10.92.0.0/24")
    refresh_fleet(runtime.factory, box=runtime.box, concurrency=4, timeout=5, full=True)
    domain = client.post("/v1/routing-domains", headers=admin, json={
        "name": "backbone", "members": [{"project": project}, {"site": sites[2], "network": hidden.id}]})
    assert domain.status_code == 201, domain.text
    foreign = declare("peek", {sites[0]: "10.92.0.0/25"})
    assert foreign.status_code == 409, foreign.text
    assert foreign.json()["detail"] == (f"cidrs.{sites[0]}: 10.92.0.0/25 overlaps an address range in use (in a "
                                        "routing domain of the network, as of the last inventory refresh); choose "
                                        "another CIDR")
    by_admin = declare("peek", {sites[0]: "10.92.0.0/25"}, headers=admin, project={"id": project})
    assert by_admin.status_code == 409 and "'admins-secret'" in by_admin.text and "'backbone'" in by_admin.text

    # delete: the reservations go back to the pool
    for name in ("app", "reuse", "free", "pooled"):
        assert client.delete(f"/v1/networks/{name}", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks", headers=tenant).json()["resources"] == []
    assert pool_cidrs(client, tenant, "edge") == []
    assert pool_cidrs(client, tenant, "wan") == ["10.70.0.0/24"]
