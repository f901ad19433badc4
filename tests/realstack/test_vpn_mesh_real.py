"""A routing domain asked to be meshed with IPsec on the two real sites that share nothing, as a
tenant. The real test bed's Neutron has no VPNaaS plugin (``GET /v2.0/extensions`` on site1 and site2
lists 84 extensions, no ``vpnaas``), so the promised outcome there is the clear per-site answer: each
site's binding fails with "not available: the site's Neutron has no vpnaas extension", no VPN object
is made, the key shows nowhere, and the mesh can be deleted again. The network under it is a real
declared network with a router gateway on an external network the sites' admin made for the test.

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


@pytest.mark.timeout(600)
def test_mesh_on_sites_without_vpnaas_says_so_per_site(api: TestClient, clouds: dict[str, Any],  # noqa: F811
                                                       tenant: dict[str, Any]) -> None:  # noqa: F811
    headers = tenant_headers(clouds, tenant)
    tag = tenant["tag"]
    admins = {site: openstack.connect(**clouds[site]) for site in SITES}
    for admin in admins.values():
        assert "vpnaas" not in {e["alias"] for e in admin.network.get("/extensions").json()["extensions"]}
    externals = []
    for admin in admins.values():
        ext = admin.network.create_network(name=f"sf-ext-{tag}", is_router_external=True)
        admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr="198.51.100.0/24", enable_dhcp=False)
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
        pid = conns["site1"].current_project_id
        domain = api.post("/v1/routing-domains", json={"name": name, "members": [{"project": pid}]}, headers=headers)
        assert domain.status_code == 201, domain.text
        mesh = api.post(f"/v1/routing-domains/{name}/vpn", json={"network": name, "psk": PSK}, headers=headers)
        assert mesh.status_code == 202 and PSK not in mesh.text, mesh.text

        def sites() -> dict[str, Any]:
            shown = api.get(f"/v1/routing-domains/{name}/vpn", headers=headers)
            assert PSK not in shown.text
            return {s["site_name"]: s for s in shown.json()["sites"]}

        assert wait_for(lambda: {s["status"] for s in sites().values()} == {"failed"}, 300), sites()
        for site in sites().values():
            assert site["error"] == "not available: the site's Neutron has no vpnaas extension", site
            assert site["connections"] == {} and site["address"] is None
        for conn in conns.values():  # nothing was made, and the VPN API is not there to make it
            assert conn.network.get("/vpn/vpnservices").status_code == 404
        assert api.delete(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/routing-domains/{name}/vpn", headers=headers).status_code == 404, 300)
        assert api.delete(f"/v1/networks/{name}", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/networks/{name}", headers=headers).status_code == 404, 300)
        assert api.delete(f"/v1/routing-domains/{name}", headers=headers).status_code == 204
    finally:
        for conn in conns.values():
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
