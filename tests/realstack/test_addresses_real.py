"""One address space on the real sites, as a tenant: the tenant makes a network with 10.91.0.0/24 on
site1 and the same CIDR on site2 (sites that share nothing), with a port on each. After the
inventory's refresh (as a user waits: the server's own workers, short intervals), ``/v1/addresses``
finds both ports' IPs by CIDR and by MAC, each with its site (site2's project is mapped by the
operator: a project Skyfleet neither provisioned nor holds a quota for has no learnt mapping); with
a routing domain over the tenant's project, the overlapping subnets are a conflict; deleting the
site2 network clears it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import fleet_api, token, wait_for
from tests.realstack.test_images_real import as_tenant, tenant, tenant_headers  # noqa: F401 (fixture)

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")
CIDR = "10.91.0.0/24"


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any]) -> Iterator[TestClient]:
    with fleet_api(runtime_factory, clouds, SITES,
                   site_timeout=30, audit_interval=5, inventory_interval=3, inventory_full_interval=5,
                   fanout_rate=0) as client:
        yield client


@pytest.mark.timeout(600)
def test_overlapping_tenant_networks_show_in_one_address_space(api: TestClient, clouds: dict[str, Any],
                                                               tenant: dict[str, Any]) -> None:  # noqa: F811
    tag = tenant["tag"]
    headers = tenant_headers(clouds, tenant)
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    made: dict[str, Any] = {}
    # site2 shares nothing with the home Keystone: the operator records where the tenant's project is
    admin_headers = {"X-Auth-Token": token(clouds["site1"]["auth"])}
    mapped = api.put(f"/v1/projects/{conns['site1'].current_project_id}/mappings/site2", headers=admin_headers,
                     json={"remote_project_id": conns["site2"].current_project_id})
    assert mapped.status_code == 200, mapped.text
    try:
        for site, conn in conns.items():
            net = conn.network.create_network(name=f"sf-addr-{tag}")
            conn.network.create_subnet(network_id=net.id, ip_version=4, cidr=CIDR, name=f"sf-addr-{tag}")
            port = conn.network.create_port(network_id=net.id, name=f"sf-addr-{tag}")
            made[site] = (net, port)
        ips = {site: port.fixed_ips[0]["ip_address"] for site, (_net, port) in made.items()}

        def rows() -> list[dict[str, Any]]:
            answer = api.get("/v1/addresses", params={"cidr": CIDR, "kind": "fixed"}, headers=headers)
            assert answer.status_code == 200, answer.text
            return [r for r in answer.json()["items"] if r["network_id"] in {n.id for n, _ in made.values()}]

        assert wait_for(lambda: {r["site"] for r in rows() if r["ip"] in ips.values()} == set(SITES), 300), rows()
        by_site = {r["site"]: r for r in rows() if r["port_id"] in {p.id for _, p in made.values()}}
        assert {s: r["ip"] for s, r in by_site.items()} == ips
        mac = made["site2"][1].mac_address
        found = api.get("/v1/addresses", params={"mac": mac.upper()}, headers=headers).json()["items"]
        assert [r["site"] for r in found] == ["site2"]
        domain = api.post("/v1/routing-domains", headers=headers, json={
            "name": f"vpn-{tag}", "members": [{"project": conns["site1"].current_project_id}]})
        assert domain.status_code == 201, domain.text

        def overlaps() -> list[dict[str, Any]]:
            body = api.get("/v1/addresses/conflicts", params={"kind": "overlapping_subnets"}, headers=headers).json()
            return [c for c in body["items"] if CIDR in str(c)]

        assert wait_for(lambda: len(overlaps()) == 1, 120), overlaps()
        net2, port2 = made.pop("site2")
        conns["site2"].network.delete_port(port2)
        conns["site2"].network.delete_network(net2)
        assert wait_for(lambda: overlaps() == [], 300), overlaps()
    finally:
        for site, (net, port) in made.items():
            conns[site].network.delete_port(port, ignore_missing=True)
            conns[site].network.delete_network(net, ignore_missing=True)
