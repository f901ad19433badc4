"""A declared network in use, on simulated sites that share nothing, as the tenant of a simulated home
Keystone: a server booted through Skyfleet with ``networks: ["<declared name>"]`` gets its port in the
site's declared subnet (the prefix the pool gave that site); removing the network while that port uses
it is refused with the reason (409 from the store's view; a per-site failure, not an endless retry,
when the store did not know yet), and ``purge=true`` deletes the ports first."""

from __future__ import annotations

import ipaddress
from typing import Any

from skyfleet.reconcile.sync_audit import run_sync_audit
from skyfleet.simulator import Simulator
from tests.engine_support import observe_inventory
from tests.functional.test_images_on_simulator import connect, upload
from tests.functional.test_networks_on_simulator import Fleet, as_tenant, fleet, marked, run

__all__ = ["fleet"]


def public_image(sim: Simulator, site: str, name: str) -> None:
    image = upload(sim, site, name)
    connect(sim, site).image.update_image(image, visibility="public")


def server_ports(sim: Simulator, site: str, server_id: str) -> list[Any]:
    return list(as_tenant(sim, site).network.ports(device_id=server_id))


def test_a_boot_uses_the_declared_network_and_delete_is_refused_while_it_does(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, _admin = fleet
    site = sim.site_names()[1]
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.70.0.0/22"},
                       headers=tenant).status_code == 201
    made = client.post("/v1/networks", headers=tenant, json={"name": "app", "pool": "wan"})
    assert made.status_code == 202, made.text
    run(runtime, engine)
    net = client.get("/v1/networks/app", headers=tenant).json()
    assert net["counts"] == {"in-sync": 3}, net["bindings"]
    cidr = {p["site_name"]: p["cidr"] for p in net["options"]["prefixes"].values()}[site]
    public_image(sim, site, "base")
    observe_inventory(runtime)

    # the boot names the declared network; its port lands in this site's prefix, in the tenant's project
    boot = client.post("/v1/servers", headers=tenant, json={
        "name": "web", "flavor": "m1.tiny", "image": "base", "networks": ["app"], "placement": {"site": site}})
    assert boot.status_code == 202, boot.text
    run(runtime, engine)
    server = client.get(f"/v1/servers/{boot.json()['servers'][0]['id']}", headers=tenant).json()
    assert server["status"] == "active", server
    (port,) = server_ports(sim, site, server["remote_id"])
    (subnet,) = marked(as_tenant(sim, site), net["id"])["subnets"]
    assert port.network_id == subnet.network_id and port.fixed_ips[0]["subnet_id"] == subnet.id
    assert ipaddress.ip_address(port.fixed_ips[0]["ip_address"]) in ipaddress.ip_network(cidr)

    # the store has not seen the port yet: the delete is accepted, the site's task finds the port and
    # fails that site with the reason (no retry for ever); the other sites' copies are gone
    assert client.delete("/v1/networks/app", headers=tenant).status_code == 202
    run(runtime, engine)
    body = client.get("/v1/networks/app", headers=tenant).json()
    (held,) = body["bindings"]
    assert (held["site_name"], held["status"]) == (site, "failed"), body["bindings"]
    assert "1 port besides its DHCP and router ports" in held["error"] and "purge=true" in held["error"]
    assert len(server_ports(sim, site, server["remote_id"])) == 1

    # once the inventory has seen it, the API refuses at once, naming the site and the count
    observe_inventory(runtime)
    refused = client.delete("/v1/networks/app", headers=tenant)
    assert refused.status_code == 409, refused.text
    assert f"{site}: 1 port" in refused.json()["detail"] and "purge=true" in refused.json()["detail"]

    # purge: the server's port goes first, then the network
    assert client.delete("/v1/networks/app", params={"purge": "true"}, headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks/app", headers=tenant).status_code == 404
    assert server_ports(sim, site, server["remote_id"]) == []
    assert marked(as_tenant(sim, site), net["id"]) == {"networks": [], "subnets": [], "routers": []}


def test_a_dual_stack_network_gets_a_v4_and_a_v6_prefix_on_each_site(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, _admin = fleet
    sites = sim.site_names()[1:]
    for name, cidr in (("wan", "10.71.0.0/22"), ("wan6", "fd00:71::/48"), ("other4", "10.72.0.0/22")):
        assert client.post("/v1/address-pools", json={"name": name, "cidr": cidr}, headers=tenant).status_code == 201
    same = client.post("/v1/networks", headers=tenant, json={"name": "ds", "pool": "wan",
                                                             "second_subnet": {"pool": "other4"}})
    assert same.status_code == 400 and "of the other IP version" in same.json()["detail"], same.text
    unknown = client.post("/v1/networks", headers=tenant, json={"name": "ds", "pool": "wan",
                                                                "second_subnet": {"pool": "nope"}})
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("second_subnet.pool: no address pool")
    short = client.post("/v1/networks", headers=tenant, json={"name": "ds", "pool": "wan",
                                                              "second_subnet": {"pool": "wan6", "prefix_length": 47}})
    assert short.status_code == 400 and "prefix_length: 47 is outside 48..128" in short.json()["detail"]
    made = client.post("/v1/networks", headers=tenant, json={"name": "ds", "pool": "wan",
                                                             "second_subnet": {"pool": "wan6"}})
    assert made.status_code == 202, made.text
    held = made.json()["options"]["prefixes"]
    v4 = {h["site_name"]: h["cidr"] for h in held.values()}
    v6 = {h["site_name"]: h["cidr2"] for h in held.values()}
    assert set(v4) == set(v6) == set(sites) and len(set(v6.values())) == 3
    assert all(ipaddress.ip_network(c).prefixlen == 64 and c.startswith("fd00:71:") for c in v6.values())
    run(runtime, engine)
    body = client.get("/v1/networks/ds", headers=tenant).json()
    assert body["counts"] == {"in-sync": 3}, body["bindings"]
    for site in sites:
        conn = as_tenant(sim, site)
        seen = marked(conn, body["id"])
        subnets = [s for s in conn.network.subnets(network_id=seen["networks"][0].id)]
        assert sorted(s.cidr for s in subnets) == sorted([v4[site], v6[site]])
        (router,) = seen["routers"]
        ports = conn.network.ports(device_id=router.id, device_owner="network:router_interface")
        assert sorted(p.fixed_ips[0]["subnet_id"] for p in ports) == sorted(s.id for s in subnets)
    assert client.delete("/v1/networks/ds", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks/ds", headers=tenant).status_code == 404
    for pool in ("wan", "wan6"):
        assert client.get(f"/v1/address-pools/{pool}/allocations", headers=tenant).json()["items"] == []


def internal_group(sim: Simulator, site: str, name: str) -> list[Any]:
    conn = as_tenant(sim, site)
    return [g for g in conn.network.security_groups(project_id=conn.current_project_id) if g.name == name]


def ingress_prefixes(group: Any) -> list[str]:
    return sorted(r["remote_ip_prefix"] for r in group.security_group_rules if r["direction"] == "ingress")


def test_an_internal_security_group_lets_in_the_networks_own_prefixes(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, _admin = fleet
    sites = sim.site_names()[1:]
    for name, cidr in (("wan", "10.73.0.0/22"), ("wan6", "fd00:73::/48")):
        assert client.post("/v1/address-pools", json={"name": name, "cidr": cidr}, headers=tenant).status_code == 201
    made = client.post("/v1/networks", headers=tenant, json={"name": "sg", "pool": "wan", "second_subnet": {
        "pool": "wan6"}, "security_group": {"allow_internal": True}})
    assert made.status_code == 202, made.text
    held = made.json()["options"]["prefixes"].values()
    every = sorted([h["cidr"] for h in held] + [h["cidr2"] for h in held])
    assert len(every) == 6
    run(runtime, engine)
    assert client.get("/v1/networks/sg", headers=tenant).json()["counts"] == {"in-sync": 3}
    for site in sites:  # one group per site, letting in every site's v4 and v6 prefix
        (group,) = internal_group(sim, site, "sg-internal")
        assert ingress_prefixes(group) == every
    # drift: a rule removed by hand comes back at the audit
    conn = as_tenant(sim, sites[0])
    (group,) = internal_group(sim, sites[0], "sg-internal")
    victim = next(r for r in group.security_group_rules if r["direction"] == "ingress")
    conn.network.delete_security_group_rule(victim["id"])
    assert run_sync_audit(runtime.factory) >= 1
    run(runtime, engine)
    assert ingress_prefixes(internal_group(sim, sites[0], "sg-internal")[0]) == every
    # turned off: the group goes; delete takes the network
    off = client.patch("/v1/networks/sg", headers=tenant, json={"security_group": {"allow_internal": False}})
    assert off.status_code == 202, off.text
    run(runtime, engine)
    assert all(internal_group(sim, site, "sg-internal") == [] for site in sites)
    assert client.patch("/v1/networks/sg", headers=tenant, json={"security_group": {}}).status_code == 202
    run(runtime, engine)
    assert all(len(internal_group(sim, site, "sg-internal")) == 1 for site in sites)
    assert client.delete("/v1/networks/sg", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/networks/sg", headers=tenant).status_code == 404
    assert all(internal_group(sim, site, "sg-internal") == [] for site in sites)
