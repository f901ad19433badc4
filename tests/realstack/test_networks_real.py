"""A network declared once on the two real sites that share nothing, as a tenant: the tenant's pool
hands site1 and site2 each a /24; Skyfleet's workers make a network, a subnet of that prefix (DHCP off,
a nameserver) and a router with an interface on it in the tenant's project on each site, and the
tenant's own openstacksdk sees them there with the allocated CIDR. A subnet the tenant deletes by hand
on site2 is made again by the drift audit, with the same CIDR and its router interface. Delete removes
them and gives the prefixes back to the pool.

Waits as a user waits: the server's workers run; the test only polls the API and the sites.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import fleet_api, wait_for
from tests.realstack.test_images_real import as_tenant, tenant, tenant_headers  # noqa: F401 (fixture)

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")
POOL = "10.94.0.0/22"


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any]) -> Iterator[TestClient]:
    with fleet_api(runtime_factory, clouds, SITES,
                   site_timeout=60, audit_interval=5, sync_audit_interval=5) as client:
        yield client


def marked(conn: Any, collection: str, mark: str) -> list[Any]:
    listing = getattr(conn.network, collection)
    return [item for item in listing(project_id=conn.current_project_id) if item.description == mark]


@pytest.mark.timeout(600)
def test_tenant_network_declared_once_on_two_real_sites(api: TestClient, clouds: dict[str, Any],
                                                        tenant: dict[str, Any]) -> None:  # noqa: F811
    headers = tenant_headers(clouds, tenant)
    name = f"sf-net-{tenant['tag']}"
    assert api.post("/v1/address-pools", json={"name": "wan", "cidr": POOL}, headers=headers).status_code == 201
    made = api.post("/v1/networks", headers=headers, json={
        "name": name, "pool": "wan", "prefix_length": 24, "enable_dhcp": False, "dns_nameservers": ["192.0.2.53"],
        "placement": {"sites": list(SITES)}})
    assert made.status_code == 202, made.text
    mark = f"skyfleet:{made.json()['id']}"
    cidrs = {p["site_name"]: p["cidr"] for p in made.json()["options"]["prefixes"].values()}
    assert set(cidrs) == set(SITES) and len(set(cidrs.values())) == 2
    assert all(ipaddress.ip_network(c).subnet_of(ipaddress.ip_network(POOL)) for c in cidrs.values())  # type: ignore[arg-type]
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    try:
        def counts() -> dict[str, int]:
            return dict(api.get(f"/v1/networks/{name}", headers=headers).json().get("counts") or {})

        assert wait_for(lambda: counts() == {"in-sync": 2}, 300), api.get(f"/v1/networks/{name}", headers=headers).text
        for site, conn in conns.items():  # the tenant's own client, in its own project on each site
            (net,) = marked(conn, "networks", mark)
            (subnet,) = marked(conn, "subnets", mark)
            (router,) = marked(conn, "routers", mark)
            assert net.name == name and subnet.network_id == net.id
            assert (subnet.cidr, subnet.is_dhcp_enabled, subnet.dns_nameservers) == (cidrs[site], False,
                                                                                     ["192.0.2.53"])
            ports = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
            assert [p.fixed_ips[0]["subnet_id"] for p in ports] == [subnet.id]
        # drift: the tenant deletes the subnet on site2 by hand; the drift audit makes it again, same CIDR
        conn = conns["site2"]
        (subnet,) = marked(conn, "subnets", mark)
        (router,) = marked(conn, "routers", mark)
        conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
        conn.network.delete_subnet(subnet)

        def repaired() -> bool:
            found = marked(conn, "subnets", mark)
            return len(found) == 1 and found[0].id != subnet.id and found[0].cidr == cidrs["site2"]

        assert wait_for(repaired, 120), marked(conn, "subnets", mark)
        again = marked(conn, "subnets", mark)[0]
        assert wait_for(lambda: [p.fixed_ips[0]["subnet_id"] for p in conn.network.ports(
            device_id=router.id, device_owner="network:router_interface")] == [again.id], 60)
        assert api.delete(f"/v1/networks/{name}", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        for conn in conns.values():
            assert marked(conn, "networks", mark) == [] and marked(conn, "routers", mark) == []
        left = api.get("/v1/address-pools/wan/allocations", headers=headers).json()["items"]
        assert left == []
    finally:
        for conn in conns.values():
            for router in marked(conn, "routers", mark):
                for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
                    conn.network.remove_interface_from_router(router, port_id=port.id)
                conn.network.delete_router(router, ignore_missing=True)
            for net in marked(conn, "networks", mark):
                conn.network.delete_network(net, ignore_missing=True)


@pytest.mark.timeout(600)
def test_dual_stack_network_in_use_on_real_sites(api: TestClient, clouds: dict[str, Any],
                                                 tenant: dict[str, Any]) -> None:  # noqa: F811
    """Dual stack: each site gets a v4 and a v6 subnet, both on the router, and an internal security
    group letting in every site's prefixes. A port of the tenant on
    site1's copy makes the delete fail on site1 with the reason (site2's copy goes); purge deletes the
    port, then the network."""
    headers = tenant_headers(clouds, tenant)
    name = f"sf-ds-{tenant['tag']}"
    for pool, cidr in (("wan", "10.95.0.0/22"), ("wan6", "fd00:95::/48")):
        assert api.post("/v1/address-pools", json={"name": pool, "cidr": cidr}, headers=headers).status_code == 201
    made = api.post("/v1/networks", headers=headers, json={
        "name": name, "pool": "wan", "second_subnet": {"pool": "wan6", "prefix_length": 64},
        "security_group": {"allow_internal": True}, "placement": {"sites": list(SITES)}})
    assert made.status_code == 202, made.text
    mark = f"skyfleet:{made.json()['id']}"
    held = {p["site_name"]: p for p in made.json()["options"]["prefixes"].values()}
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    try:
        def shown() -> dict[str, Any]:
            return dict(api.get(f"/v1/networks/{name}", headers=headers).json())

        assert wait_for(lambda: shown().get("counts") == {"in-sync": 2}, 300), shown()
        for site, conn in conns.items():
            (net,) = marked(conn, "networks", mark)
            subnets = list(conn.network.subnets(network_id=net.id))
            assert sorted(s.cidr for s in subnets) == sorted([held[site]["cidr"], held[site]["cidr2"]])
            (router,) = marked(conn, "routers", mark)
            ports = conn.network.ports(device_id=router.id, device_owner="network:router_interface")
            assert sorted(p.fixed_ips[0]["subnet_id"] for p in ports) == sorted(s.id for s in subnets)
            (group,) = marked(conn, "security_groups", mark)  # lets in every site's v4 and v6 prefix
            assert group.name == f"{name}-internal"
            assert sorted(r["remote_ip_prefix"] for r in group.security_group_rules if r["direction"] == "ingress") \
                == sorted(c for h in held.values() for c in (h["cidr"], h["cidr2"]))
        (net,) = marked(conns["site1"], "networks", mark)
        port = conns["site1"].network.create_port(network_id=net.id, device_owner="compute:nova")
        assert api.delete(f"/v1/networks/{name}", headers=headers).status_code == 202

        def failed_on_site1() -> bool:
            bindings = shown().get("bindings") or []
            return [(b["site_name"], b["status"]) for b in bindings] == [("site1", "failed")]

        assert wait_for(failed_on_site1, 300), shown()
        assert "1 port besides its DHCP and router ports" in shown()["bindings"][0]["error"]
        assert conns["site1"].network.get_port(port.id).id == port.id
        assert api.delete(f"/v1/networks/{name}", params={"purge": "true"}, headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        assert conns["site1"].network.find_port(port.id) is None
        for pool in ("wan", "wan6"):
            assert api.get(f"/v1/address-pools/{pool}/allocations", headers=headers).json()["items"] == []
        assert all(marked(conn, "security_groups", mark) == [] for conn in conns.values())
    finally:
        for conn in conns.values():
            for router in marked(conn, "routers", mark):
                for rport in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
                    conn.network.remove_interface_from_router(router, port_id=rport.id)
                conn.network.delete_router(router, ignore_missing=True)
            for net in marked(conn, "networks", mark):
                for left in conn.network.ports(network_id=net.id, device_owner="compute:nova"):
                    conn.network.delete_port(left, ignore_missing=True)
                conn.network.delete_network(net, ignore_missing=True)
            for group in marked(conn, "security_groups", mark):
                conn.network.delete_security_group(group, ignore_missing=True)
