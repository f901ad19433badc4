"""One address space for a declared network on the two real sites that share nothing, as a tenant: the
tenant's pool (10.200.0.0/16, used by no other real-site test) hands site1 and site2 two disjoint /24s;
a server booted through Skyfleet on each site, on the declared network by name, gets an address inside
its site's prefix, and ``/v1/addresses`` shows both with their MACs. With a routing domain over the
tenant's project, a subnet the tenant makes by hand on site2 inside site1's prefix is an
``overlapping_subnets`` conflict, and it is gone from the conflicts once that subnet is deleted.

A network declared with an explicit CIDR overlapping that kind of subnet (the tenant's own, on site2, in
its routing domain) is refused with a 409 naming it; a free one is made on site1.

Waits as a user waits: the server's own workers run with short intervals; the test only polls the API
and the sites (bounded polls, no fixed sleeps).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, tidy, token, wait_for
from tests.realstack.test_images_real import as_tenant, tenant, tenant_headers  # noqa: F401 (fixture)

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")
POOL = "10.200.0.0/16"


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any]) -> Iterator[TestClient]:
    with fleet_api(runtime_factory, clouds, SITES,
                   site_timeout=60, audit_interval=5, sync_audit_interval=5, inventory_interval=3,
                   inventory_full_interval=5, fanout_rate=0) as client:
        yield client


def marked(conn: Any, collection: str, mark: str) -> list[Any]:
    listing = getattr(conn.network, collection)
    return [item for item in listing(project_id=conn.current_project_id) if item.description == mark]


@pytest.mark.timeout(900)
def test_declared_network_servers_and_a_hand_made_overlap_in_one_address_space(
        api: TestClient, clouds: dict[str, Any], tenant: dict[str, Any]) -> None:  # noqa: F811
    tag = tenant["tag"]
    name = f"sf-as-{tag}"
    headers = tenant_headers(clouds, tenant)
    admin = {"X-Auth-Token": token(clouds["site1"]["auth"])}
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    admins = {site: connect(clouds[site]["auth"]) for site in SITES}
    # site2 shares nothing with the home Keystone: the operator records where the tenant's project is
    mapped = api.put(f"/v1/projects/{conns['site1'].current_project_id}/mappings/site2", headers=admin,
                     json={"remote_project_id": conns["site2"].current_project_id})
    assert mapped.status_code == 200, mapped.text
    flavors: dict[str, Any] = {}
    images: dict[str, Any] = {}
    servers: dict[str, str] = {}
    mark = ""
    hand: Any = None
    try:
        for site in SITES:  # what a boot needs on each site: a public flavor, an image the tenant may use
            flavors[site] = admins[site].compute.create_flavor(name=name, ram=64, vcpus=1, disk=1, is_public=True)
            images[site] = conns[site].image.create_image(name=name, data=os.urandom(1 << 20), disk_format="raw",
                                                          container_format="bare", allow_duplicates=True, wait=True)
        assert api.post("/v1/address-pools", json={"name": "wan", "cidr": POOL}, headers=headers).status_code == 201
        made = api.post("/v1/networks", headers=headers, json={
            "name": name, "pool": "wan", "prefix_length": 24, "router": {"enabled": False},
            "placement": {"sites": list(SITES)}})
        assert made.status_code == 202, made.text
        mark = f"skyfleet:{made.json()['id']}"
        cidrs = {p["site_name"]: ipaddress.ip_network(p["cidr"]) for p in made.json()["options"]["prefixes"].values()}
        assert set(cidrs) == set(SITES) and not cidrs["site1"].overlaps(cidrs["site2"])
        assert all(c.prefixlen == 24 and c.subnet_of(ipaddress.ip_network(POOL)) for c in cidrs.values())  # type: ignore[arg-type]

        def shown() -> dict[str, Any]:
            return dict(api.get(f"/v1/networks/{name}", headers=headers).json())

        assert wait_for(lambda: shown().get("counts") == {"in-sync": 2}, 300), shown()
        assert api.post("/v1/inventory/refresh", params={"full": "true"}, headers=admin).status_code == 202

        def listed(kind: str) -> set[str]:
            items = api.get(f"/v1/inventory/{kind}", params={"name": name}, headers=admin).json()["items"]
            return {i["site"] for i in items}

        assert wait_for(lambda: listed("flavors") == set(SITES) and listed("images") == set(SITES), 300), \
            (listed("flavors"), listed("images"))

        for site in SITES:  # a server through Skyfleet on each site, on the declared network by name
            boot = api.post("/v1/servers", headers=headers, json={
                "name": f"{name}-{site}", "flavor": name, "image": name, "networks": [name],
                "placement": {"site": site}})
            assert boot.status_code == 202, boot.text
            servers[site] = boot.json()["servers"][0]["id"]

        def server(site: str) -> dict[str, Any]:
            return dict(api.get(f"/v1/servers/{servers[site]}", headers=headers).json())

        for site in SITES:
            assert wait_for(lambda: server(site)["status"] in ("active", "failed"), 600), server(site)
            assert (server(site)["status"], server(site)["site"]) == ("active", site), server(site)
        ports = {}
        for site, conn in conns.items():  # its port: an address of the site's own prefix
            (port,) = list(conn.network.ports(device_id=server(site)["remote_id"]))
            ports[site] = port
            assert ipaddress.ip_address(port.fixed_ips[0]["ip_address"]) in cidrs[site], (site, port.fixed_ips)

        def rows() -> dict[str, dict[str, Any]]:
            answer = api.get("/v1/addresses", params={"cidr": POOL, "kind": "fixed", "limit": 1000}, headers=headers)
            assert answer.status_code == 200, answer.text
            return {r["site"]: r for r in answer.json()["items"] if r["port_id"] in {p.id for p in ports.values()}}

        assert wait_for(lambda: set(rows()) == set(SITES), 300), rows()
        for site, row in rows().items():
            assert (row["ip"], row["mac"].lower()) == (ports[site].fixed_ips[0]["ip_address"],
                                                       ports[site].mac_address.lower()), row
            assert ipaddress.ip_address(row["ip"]) in cidrs[site]

        # a routing domain over the tenant's project; then a subnet made by hand on site2 in site1's prefix
        domain = api.post("/v1/routing-domains", headers=headers, json={
            "name": f"as-{tag}", "members": [{"project": conns["site1"].current_project_id}]})
        assert domain.status_code == 201, domain.text
        inside = str(next(cidrs["site1"].subnets(new_prefix=26)))
        hand = conns["site2"].network.create_network(name=f"{name}-hand")
        conns["site2"].network.create_subnet(network_id=hand.id, ip_version=4, cidr=inside, name=f"{name}-hand")

        def overlaps() -> list[dict[str, Any]]:
            answer = api.get("/v1/addresses/conflicts", params={"kind": "overlapping_subnets", "limit": 1000},
                             headers=headers)
            assert answer.status_code == 200, answer.text
            return [c for c in answer.json()["items"] if inside in str(c)]

        assert wait_for(lambda: len(overlaps()) == 1, 300), overlaps()
        assert str(cidrs["site1"]) in str(overlaps()[0]), overlaps()
        conns["site2"].network.delete_network(hand)
        hand = None
        assert wait_for(lambda: overlaps() == [], 300), overlaps()
    finally:
        for site, server_id in servers.items():
            api.delete(f"/v1/servers/{server_id}", headers=headers)
        for site, server_id in servers.items():
            wait_for(lambda: api.get(f"/v1/servers/{server_id}", headers=headers).json()["status"] == "deleted", 300)
        for site, conn in conns.items():
            for left in conn.compute.servers(name=f"{name}-{site}"):
                conn.compute.delete_server(left, ignore_missing=True)
                conn.compute.wait_for_delete(left, wait=300)
        if hand is not None:
            conns["site2"].network.delete_network(hand, ignore_missing=True)
        api.delete(f"/v1/networks/{name}", params={"purge": "true"}, headers=headers)
        wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        for conn in conns.values():
            if mark:
                for net in marked(conn, "networks", mark):
                    for port in conn.network.ports(network_id=net.id):
                        conn.network.delete_port(port, ignore_missing=True)
                    conn.network.delete_network(net, ignore_missing=True)
        for site, image in images.items():
            tidy(conns[site].image.delete_image, image, ignore_missing=True)
        for site, flavor in flavors.items():
            admins[site].compute.delete_flavor(flavor, ignore_missing=True)


@pytest.mark.timeout(900)
def test_explicit_cidr_overlapping_a_subnet_of_the_routing_domain_is_refused(
        api: TestClient, clouds: dict[str, Any], tenant: dict[str, Any]) -> None:  # noqa: F811
    """The tenant's routing domain holds a subnet it made by hand on site2 (10.205.1.0/24): a network
    declared with that range on site1 is refused (409 naming it, from the inventory of the real site);
    a free range (10.205.2.0/24) is made on site1, as the tenant's openstacksdk sees it."""
    tag = tenant["tag"]
    name = f"sf-cidr-{tag}"
    headers = tenant_headers(clouds, tenant)
    admin = {"X-Auth-Token": token(clouds["site1"]["auth"])}
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    mapped = api.put(f"/v1/projects/{conns['site1'].current_project_id}/mappings/site2", headers=admin,
                     json={"remote_project_id": conns["site2"].current_project_id})
    assert mapped.status_code == 200, mapped.text
    hand: Any = None
    domain = f"cidr-{tag}"
    try:
        hand = conns["site2"].network.create_network(name=f"{name}-hand")
        conns["site2"].network.create_subnet(network_id=hand.id, ip_version=4, cidr="10.205.1.0/24",
                                             name=f"{name}-hand")
        made_domain = api.post("/v1/routing-domains", headers=headers, json={
            "name": domain, "members": [{"project": conns["site1"].current_project_id}]})
        assert made_domain.status_code == 201, made_domain.text
        assert api.post("/v1/inventory/refresh", params={"full": "true"}, headers=admin).status_code == 202

        def seen() -> bool:
            answer = api.get("/v1/addresses/summary", params={"site": "site2"}, headers=headers)
            return answer.status_code == 200 and "10.205.1.0/24" in answer.text

        assert wait_for(seen, 300), api.get("/v1/addresses/summary", headers=headers).text
        refused = api.post("/v1/networks", headers=headers, json={
            "name": name, "cidrs": {"site1": "10.205.1.128/25"}, "router": {"enabled": False},
            "placement": {"sites": ["site1"]}})
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"].startswith(
            f"cidrs.site1: 10.205.1.128/25 overlaps the subnet 10.205.1.0/24 of the network '{name}-hand' in site "
            "site2"), refused.text
        assert api.get(f"/v1/networks/{name}", headers=headers).status_code == 404

        made = api.post("/v1/networks", headers=headers, json={
            "name": name, "cidrs": {"site1": "10.205.2.0/24"}, "router": {"enabled": False},
            "placement": {"sites": ["site1"]}})
        assert made.status_code == 202, made.text
        mark = f"skyfleet:{made.json()['id']}"

        def shown() -> dict[str, Any]:
            return dict(api.get(f"/v1/networks/{name}", headers=headers).json())

        assert wait_for(lambda: shown().get("counts") == {"in-sync": 1}, 300), shown()
        (subnet,) = marked(conns["site1"], "subnets", mark)
        assert subnet.cidr == "10.205.2.0/24"
        assert marked(conns["site2"], "subnets", mark) == []
    finally:
        tidy(api.delete, f"/v1/networks/{name}", params={"purge": "true"}, headers=headers)
        wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        tidy(api.delete, f"/v1/routing-domains/{domain}", headers=headers)
        if hand is not None:
            tidy(conns["site2"].network.delete_network, hand, ignore_missing=True)
