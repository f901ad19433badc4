"""A routing domain meshed with IPsec on the two real sites that share nothing, as a tenant.

The real test bed's Neutron has the VPNaaS plugin (neutron-vpnaas 29.0.0, reference IPsec driver) but
no L3 or VPN agent: every API object is real -- IKE and IPsec policies, a VPN service on the declared
network's router, endpoint groups, a connection to the other site's router gateway -- but no tunnel
comes up, so services and connections stay ``PENDING_CREATE`` (the test records what the sites
report) and Neutron refuses to update a connection; a key rotation replaces them. The test checks with
the tenant's own openstacksdk client that the objects are in its project on each site, that Skyfleet
never shows the key while the sites hold it, that a rotation puts the new key on both sites, and that
unmeshing removes everything. The network under it is a real declared network with a router gateway
on an external network the sites' admin made for the test.

Waits as a user waits: the server's workers run; the test only polls the API and the sites.
"""

from __future__ import annotations

from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient

from tests.realstack.support import wait_for
from tests.realstack.test_images_real import as_tenant, tenant, tenant_headers  # noqa: F401 (fixture)
from tests.realstack.test_networks_real import SITES, api  # noqa: F401 (fixture)

pytestmark = pytest.mark.realstack
PSK = "real-site-mesh-key-0123456789"
NEW_PSK = "real-site-rotated-key-9876543210"
COLLECTIONS = ("ipsec-site-connections", "endpoint-groups", "vpnservices", "ipsecpolicies", "ikepolicies")


def vpn_objects(conn: Any, collection: str, mark: str) -> list[dict[str, Any]]:
    """The tenant's own view of the mesh's objects of one kind on a site (by Skyfleet's mark)."""
    answer = conn.network.get(f"/vpn/{collection}", params={"project_id": conn.current_project_id})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()[collection.replace("-", "_")]
    return [i for i in items if str(i.get("description") or "").startswith(mark)]


@pytest.mark.timeout(900)
def test_mesh_on_real_vpnaas_sites(api: TestClient, clouds: dict[str, Any],  # noqa: F811
                                   tenant: dict[str, Any], record_property: Any) -> None:  # noqa: F811
    headers = tenant_headers(clouds, tenant)
    tag = tenant["tag"]
    admins = {site: openstack.connect(**clouds[site]) for site in SITES}
    for admin in admins.values():
        assert "vpnaas" in {e["alias"] for e in admin.network.get("/extensions").json()["extensions"]}
    externals = []
    for n, admin in enumerate(admins.values()):  # each site's routers get a gateway of their own range
        ext = admin.network.create_network(name=f"sf-ext-{tag}", is_router_external=True)
        admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr=f"198.51.{100 + n}.0/24",
                                    enable_dhcp=False)
        externals.append((admin, ext))
    name = f"sf-mesh-{tag}"
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    try:
        assert api.post("/v1/address-pools", json={"name": "wan", "cidr": "10.96.0.0/22"},
                        headers=headers).status_code == 201
        made = api.post("/v1/networks", headers=headers, json={
            "name": name, "pool": "wan", "router": {"external_network": f"sf-ext-{tag}"},
            "placement": {"sites": list(SITES)}})
        assert made.status_code == 202, made.text
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).json().get("counts")
                        == {"in-sync": 2}, 300), api.get(f"/v1/networks/{name}", headers=headers).text
        cidrs = {p["site_name"]: p["cidr"] for p in api.get(f"/v1/networks/{name}", headers=headers)
                 .json()["options"]["prefixes"].values()}
        pid = conns["site1"].current_project_id
        domain = api.post("/v1/routing-domains", json={"name": name, "members": [{"project": pid}]}, headers=headers)
        assert domain.status_code == 201, domain.text
        mesh = api.post(f"/v1/routing-domains/{name}/vpn", json={"network": name, "psk": PSK}, headers=headers)
        assert mesh.status_code == 202 and PSK not in mesh.text, mesh.text
        mark = "skyfleet:"  # the tenant's project is new: every VPN object in it is the mesh's

        def shown() -> dict[str, Any]:
            answer = api.get(f"/v1/routing-domains/{name}/vpn", headers=headers)
            assert answer.status_code == 200 and PSK not in answer.text and NEW_PSK not in answer.text, answer.text
            body: dict[str, Any] = answer.json()
            return body

        def meshed() -> bool:
            sites = {s["site_name"]: s for s in shown()["sites"]}
            return set(sites) == set(SITES) and all(
                s["status"] == "in-sync" and set(s["connections"]) == set(SITES) - {n} for n, s in sites.items())

        assert wait_for(meshed, 300), shown()
        for site, other in (("site1", "site2"), ("site2", "site1")):
            conn = conns[site]
            (service,) = vpn_objects(conn, "vpnservices", mark)
            assert service["name"] == mesh.json()["routing_domain_id"]
            (ike,) = vpn_objects(conn, "ikepolicies", mark)
            (ipsec,) = vpn_objects(conn, "ipsecpolicies", mark)
            assert (ike["ike_version"], ike["pfs"], ike["encryption_algorithm"]) == ("v2", "group14", "aes-256")
            assert (ipsec["auth_algorithm"], ipsec["transform_protocol"]) == ("sha256", "esp")
            groups = {g["type"]: g["endpoints"] for g in vpn_objects(conn, "endpoint-groups", mark)}
            assert groups["cidr"] == [cidrs[other]] and len(groups["subnet"]) == 1
            (link,) = vpn_objects(conn, "ipsec-site-connections", mark)
            peer_address = {s["site_name"]: s["address"] for s in shown()["sites"]}[other]
            assert link["peer_address"] == peer_address and link["psk"] == PSK  # the site holds it; Skyfleet not
            assert service["project_id"] == link["project_id"] == ike["project_id"] == conn.current_project_id
            record_property(f"{site}_vpnservice_status", service["status"])
            record_property(f"{site}_connection_status", link["status"])
            assert link["status"] in ("PENDING_CREATE", "DOWN", "ACTIVE")
        view = shown()
        record_property("skyfleet_connections", {s["site_name"]: s["connections"] for s in view["sites"]})
        assert view["key_version"] == 1 and view["old_key_sites"] == [] and view["psk_set"] is True

        before = {site: vpn_objects(conns[site], "ipsec-site-connections", mark)[0]["id"] for site in SITES}
        rotated = api.post(f"/v1/routing-domains/{name}/vpn/rotate-key", json={"psk": NEW_PSK}, headers=headers)
        assert rotated.status_code == 202 and NEW_PSK not in rotated.text, rotated.text
        assert rotated.json()["key_version"] == 2 and rotated.json()["old_key_sites"] == sorted(SITES)
        assert wait_for(lambda: shown()["old_key_sites"] == [] and meshed(), 300), shown()
        for site in SITES:
            (link,) = vpn_objects(conns[site], "ipsec-site-connections", mark)
            assert link["psk"] == NEW_PSK
            if link["status"].startswith("PENDING_"):  # Neutron would not update it: replaced
                assert link["id"] != before[site]

        assert api.delete(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 404, 300)
        for conn in conns.values():
            for collection in COLLECTIONS:
                assert vpn_objects(conn, collection, mark) == [], collection
        assert api.delete(f"/v1/networks/{name}", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        assert api.delete(f"/v1/routing-domains/{name}", headers=headers).status_code == 204
    finally:
        cleanup(conns, externals, name)


def cleanup(conns: dict[str, Any], externals: list[tuple[Any, Any]], name: str) -> None:
    """Whatever a failed run left: the mesh's VPN objects, the network's router and network, the
    external networks."""
    for conn in conns.values():
        for collection in COLLECTIONS:
            for item in [i for i in conn.network.get(f"/vpn/{collection}").json()[collection.replace("-", "_")]
                         if str(i.get("description") or "").startswith("skyfleet:")]:
                conn.network.delete(f"/vpn/{collection}/{item['id']}")
        for router in [r for r in conn.network.routers(project_id=conn.current_project_id) if r.name == name]:
            for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
                conn.network.remove_interface_from_router(router, port_id=port.id)
            conn.network.delete_router(router, ignore_missing=True)
        for net in [n for n in conn.network.networks(project_id=conn.current_project_id) if n.name == name]:
            conn.network.delete_network(net, ignore_missing=True)
    for admin, ext in externals:
        for port in admin.network.ports(network_id=ext.id):
            admin.network.delete_port(port, ignore_missing=True)
        admin.network.delete_network(ext, ignore_missing=True)


@pytest.mark.timeout(900)
def test_dual_stack_mesh_on_real_vpnaas_sites(api: TestClient, clouds: dict[str, Any],  # noqa: F811
                                              tenant: dict[str, Any], record_property: Any) -> None:  # noqa: F811
    """Routers with an IPv4 and an IPv6 gateway: an IPv4 connection each way and an IPv6 one
    (``<site>#6``) between the IPv6 gateways, with the v6 prefixes; real Neutron accepts both."""
    headers = tenant_headers(clouds, tenant)
    tag = tenant["tag"]
    admins = {site: openstack.connect(**clouds[site]) for site in SITES}
    externals = []
    for n, admin in enumerate(admins.values()):
        ext = admin.network.create_network(name=f"sf-ext-{tag}", is_router_external=True)
        admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr=f"198.51.{100 + n}.0/24",
                                    enable_dhcp=False)
        admin.network.create_subnet(network_id=ext.id, ip_version=6, cidr=f"2001:db8:{100 + n}::/64",
                                    enable_dhcp=False)
        externals.append((admin, ext))
    name = f"sf-mesh6-{tag}"
    conns = {site: as_tenant(clouds, site, tenant) for site in SITES}
    try:
        for pool, cidr in (("wan", "10.97.0.0/22"), ("wan6", "fd00:97::/48")):
            assert api.post("/v1/address-pools", json={"name": pool, "cidr": cidr}, headers=headers).status_code == 201
        made = api.post("/v1/networks", headers=headers, json={
            "name": name, "pool": "wan", "second_subnet": {"pool": "wan6", "prefix_length": 64},
            "router": {"external_network": f"sf-ext-{tag}"}, "placement": {"sites": list(SITES)}})
        assert made.status_code == 202, made.text
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).json().get("counts")
                        == {"in-sync": 2}, 300), api.get(f"/v1/networks/{name}", headers=headers).text
        held = {p["site_name"]: p for p in api.get(f"/v1/networks/{name}", headers=headers)
                .json()["options"]["prefixes"].values()}
        pid = conns["site1"].current_project_id
        assert api.post("/v1/routing-domains", json={"name": name, "members": [{"project": pid}]},
                        headers=headers).status_code == 201
        assert api.post(f"/v1/routing-domains/{name}/vpn", json={"network": name, "psk": PSK},
                        headers=headers).status_code == 202

        def connections() -> dict[str, dict[str, str]]:
            answer = api.get(f"/v1/routing-domains/{name}/vpn", headers=headers)
            assert PSK not in answer.text
            return {s["site_name"]: s["connections"] for s in answer.json()["sites"] if s["status"] == "in-sync"}

        both = {"site1": {"site2", "site2#6"}, "site2": {"site1", "site1#6"}}
        assert wait_for(lambda: {k: set(v) for k, v in connections().items()} == both, 400), connections()
        record_property("skyfleet_connections_dual_stack", connections())
        for site, other in (("site1", "site2"), ("site2", "site1")):
            links = {str(c["description"]).rsplit(":", 1)[1]: c
                     for c in vpn_objects(conns[site], "ipsec-site-connections", "skyfleet:")}
            (theirs,) = vpn_objects(conns[other], "vpnservices", "skyfleet:")
            assert ":" in str(theirs["external_v6_ip"])
            assert links[f"{other}#6"]["peer_address"] == theirs["external_v6_ip"]
            assert links[other]["peer_address"] == theirs["external_v4_ip"]
            groups = {g["id"]: g for g in vpn_objects(conns[site], "endpoint-groups", "skyfleet:")}
            assert groups[links[f"{other}#6"]["peer_ep_group_id"]]["endpoints"] == [held[other]["cidr2"]]
            assert groups[links[other]["peer_ep_group_id"]]["endpoints"] == [held[other]["cidr"]]
        assert api.delete(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 404, 300)
        for conn in conns.values():
            for collection in COLLECTIONS:
                assert vpn_objects(conn, collection, "skyfleet:") == [], collection
        assert api.delete(f"/v1/networks/{name}", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        assert api.delete(f"/v1/routing-domains/{name}", headers=headers).status_code == 204
    finally:
        cleanup(conns, externals, name)
