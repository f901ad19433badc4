"""Contract: the VPNaaS driver (``skyfleet.drivers.openstack.vpnapi``) against the sites.

Both the simulator and the real test bed (neutron-vpnaas 29.0.0, no VPN agent) offer the ``vpnaas``
extension: IKE and IPsec policies, a VPN service on a tenant's router with an external gateway (its
address is the gateway's; none on a router without one: 400), endpoint groups and an IPsec site
connection, found again by Skyfleet's mark, the pre-shared key never in an answer, Neutron's refusals
(an address that is no IP, a policy or service in use 409, an endpoint group in use 400, a router's
gateway or interface a connection needs 409), and every delete idempotent. A connection no agent took
up is ``PENDING_CREATE`` and Neutron refuses to update it (the driver answers None: replace it); one an
agent took up (the simulator's default) takes the new key and peer. A site without the extension is
detected, clearly and permanently (the simulator with VPNaaS turned off).
"""

from __future__ import annotations

from collections.abc import Iterator

import openstack.connection
import pytest
from contract_support import Site, Tenant, quiet, unique

from skyfleet.drivers.openstack import networkapi, vpnapi
from skyfleet.errors import PermanentSiteError, SiteError

pytestmark = pytest.mark.contract
PSK = "contract-test-key-0123456789"


def aliases(site: Site) -> set[str]:
    return {e["alias"] for e in site.admin.network.get("/extensions").json()["extensions"]}


@pytest.mark.covers("vpnapi.vpnaas_available", "vpnapi.require_vpnaas")
def test_vpnaas_is_detected_as_the_site_offers_it(conn: openstack.connection.Connection, site: Site) -> None:
    offered = "vpnaas" in aliases(site)
    assert vpnapi.vpnaas_available(conn) is offered
    if offered:
        vpnapi.require_vpnaas(conn)
        return
    with pytest.raises(PermanentSiteError) as absent:
        vpnapi.require_vpnaas(conn)
    assert str(absent.value) == vpnapi.NOT_AVAILABLE == "not available: the site's Neutron has no vpnaas extension"
    assert site.admin.network.get("/vpn/ikepolicies").status_code == 404  # what a call would have met


@pytest.fixture
def router(site: Site, conn: openstack.connection.Connection, project: Tenant) -> Iterator[tuple[str, str, str]]:
    """A tenant's router (id) with an external gateway (its address) and an interface on a subnet (id)."""
    admin = site.admin
    ext = admin.network.create_network(name=unique("ext"), is_router_external=True)
    admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr="198.51.100.0/24", enable_dhcp=False)
    mark = f"skyfleet:{unique('vpnnet')}"
    net = networkapi.create_network(conn, name="vpn", project_id=project.project_id, mark=mark)
    sub = networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name="vpn", mark=mark,
                                   cidr="10.93.8.0/24", gateway=True, enable_dhcp=False, dns_nameservers=[])
    made = networkapi.create_router(conn, name="vpn", project_id=project.project_id, mark=mark,
                                    external_network_id=ext.id)
    networkapi.add_router_interface(conn, made["id"], sub["id"])
    try:
        yield made["id"], made["external_gateway_info"]["external_fixed_ips"][0]["ip_address"], sub["id"]
    finally:
        quiet(networkapi.remove_router_interface, conn, made["id"], sub["id"])
        quiet(networkapi.delete_router, conn, made["id"])
        quiet(networkapi.delete_network, conn, net["id"])
        for port in admin.network.ports(network_id=ext.id):
            quiet(admin.network.delete_port, port)
        quiet(admin.network.delete_network, ext)


@pytest.mark.covers("vpnapi.find_marked", "vpnapi.create_ike_policy", "vpnapi.create_ipsec_policy",
                    "vpnapi.create_vpn_service", "vpnapi.create_endpoint_group", "vpnapi.create_site_connection",
                    "vpnapi.update_site_connection", "vpnapi.connection_has_key", "vpnapi.delete")
def test_a_site_connection_in_a_tenant_project(conn: openstack.connection.Connection, site: Site, project: Tenant,
                                               router: tuple[str, str, str]) -> None:
    if not vpnapi.vpnaas_available(conn):  # a site without VPNaaS: the detection is the contract
        with pytest.raises(PermanentSiteError, match="no vpnaas extension"):
            vpnapi.require_vpnaas(conn)
        with pytest.raises(SiteError) as absent:  # and a call made regardless meets Neutron's 404
            vpnapi.find_marked(conn, "ikepolicies", project_id=project.project_id, mark="x")
        assert absent.value.status == 404
        return
    router_id, gateway_ip, subnet_id = router
    pid, mark = project.project_id, f"skyfleet:{unique('mesh')}"
    made: list[tuple[str, str]] = []
    try:
        ike = vpnapi.create_ike_policy(conn, project_id=pid, name="mesh", mark=mark,
                                       settings={"ike_version": "v2", "encryption_algorithm": "aes-256",
                                                 "auth_algorithm": "sha256", "pfs": "group14"})
        made.append(("ikepolicies", ike["id"]))
        assert (ike["project_id"], ike["ike_version"], ike["phase1_negotiation_mode"]) == (pid, "v2", "main")
        assert ike["lifetime"] == {"units": "seconds", "value": 3600}
        ipsec = vpnapi.create_ipsec_policy(conn, project_id=pid, name="mesh", mark=mark,
                                           settings={"encryption_algorithm": "aes-256", "auth_algorithm": "sha256",
                                                     "pfs": "group14"})
        made.append(("ipsecpolicies", ipsec["id"]))
        assert (ipsec["transform_protocol"], ipsec["encapsulation_mode"]) == ("esp", "tunnel")
        with pytest.raises(PermanentSiteError) as bad:  # Neutron checks the algorithms
            vpnapi.create_ike_policy(conn, project_id=pid, name="bad", mark=mark, settings={"pfs": "group99"})
        assert bad.value.status == 400
        service = vpnapi.create_vpn_service(conn, project_id=pid, name="mesh", mark=mark, router_id=router_id)
        made.append(("vpnservices", service["id"]))
        assert service["status"] == "PENDING_CREATE"  # as created; later the agent's word, if any
        bare = networkapi.create_router(conn, name="bare", project_id=pid, mark=mark, external_network_id=None)
        try:
            with pytest.raises(PermanentSiteError) as bad:  # a VPN service needs the router's gateway
                vpnapi.create_vpn_service(conn, project_id=pid, name="bad", mark=mark, router_id=bare["id"])
            assert bad.value.status == 400 and "has no external network gateway set" in bad.value.message
        finally:
            networkapi.delete_router(conn, bare["id"])
        assert (service["router_id"], service["external_v4_ip"], service["subnet_id"]) == (router_id, gateway_ip, None)
        local = vpnapi.create_endpoint_group(conn, project_id=pid, name="local", mark=mark, kind="subnet",
                                             endpoints=[subnet_id])
        made.append(("endpoint-groups", local["id"]))
        peer = vpnapi.create_endpoint_group(conn, project_id=pid, name="peer", mark=mark + ":p", kind="cidr",
                                            endpoints=["10.93.9.0/24"])
        made.append(("endpoint-groups", peer["id"]))
        assert (peer["type"], peer["endpoints"]) == ("cidr", ["10.93.9.0/24"])
        link = vpnapi.create_site_connection(conn, project_id=pid, name="to-peer", mark=mark,
                                             vpnservice_id=service["id"], ikepolicy_id=ike["id"],
                                             ipsecpolicy_id=ipsec["id"],
                                             local_ep_group_id=local["id"], peer_ep_group_id=peer["id"],
                                             peer_address="203.0.113.7", psk=PSK)
        made.insert(0, ("ipsec-site-connections", link["id"]))
        assert "psk" not in link and PSK not in str(link)
        assert (link["peer_address"], link["peer_id"], link["auth_mode"], link["mtu"]) == \
            ("203.0.113.7", "203.0.113.7", "psk", 1500)
        assert link["status"] in ("PENDING_CREATE", "DOWN", "ACTIVE")
        (found,) = vpnapi.find_marked(conn, "ipsec-site-connections", project_id=pid, mark=mark)
        assert found["id"] == link["id"] and "psk" not in found
        groups = vpnapi.find_marked(conn, "endpoint-groups", project_id=pid, mark=mark)
        assert [g["id"] for g in groups] == [local["id"]]
        by_prefix = vpnapi.find_marked(conn, "endpoint-groups", project_id=pid, mark=mark + ":", prefix=True)
        assert [g["id"] for g in by_prefix] == [peer["id"]]
        assert vpnapi.connection_has_key(conn, link["id"], PSK) is True
        status = str(vpnapi.find_marked(conn, "ipsec-site-connections", project_id=pid, mark=mark)[0]["status"])
        moved = vpnapi.update_site_connection(conn, link["id"], peer_address="203.0.113.8", psk=PSK + "-2")
        if status.startswith("PENDING_"):  # no agent took it up (the real test bed): Neutron refuses
            assert moved is None
            assert vpnapi.connection_has_key(conn, link["id"], PSK) is True
        else:
            assert status in ("DOWN", "ACTIVE")
            assert moved is not None and moved["peer_address"] == "203.0.113.8" and "psk" not in moved
            assert vpnapi.connection_has_key(conn, link["id"], PSK) is False
        with pytest.raises(SiteError) as busy:  # a policy a connection uses
            vpnapi.delete(conn, "ikepolicies", ike["id"])
        assert busy.value.status == 409 and "IKEPolicyInUse" in busy.value.message
        with pytest.raises(SiteError) as busy:  # the service a connection uses
            vpnapi.delete(conn, "vpnservices", service["id"])
        assert busy.value.status == 409 and "VPNServiceInUse" in busy.value.message
        with pytest.raises(SiteError) as busy:  # an endpoint group in use: Neutron says 400, not 409
            vpnapi.delete(conn, "endpoint-groups", local["id"])
        assert busy.value.status == 400 and "EndpointGroupInUse" in busy.value.message
        with pytest.raises(SiteError) as busy:  # the router's gateway carries the service
            networkapi.set_router_gateway(conn, router_id, None)
        assert busy.value.status == 409 and "used by VPN service" in busy.value.message
        with pytest.raises(SiteError) as busy:  # the subnet of the local endpoint group
            networkapi.remove_router_interface(conn, router_id, subnet_id)
        assert busy.value.status == 409 and "SubnetInUseByIPsecSiteConnection" in busy.value.message
        with pytest.raises(PermanentSiteError) as bad:  # not an address: Neutron tried to resolve it
            vpnapi.create_site_connection(conn, project_id=pid, name="bad", mark=mark, vpnservice_id=service["id"],
                                          ikepolicy_id=ike["id"], ipsecpolicy_id=ipsec["id"],
                                          local_ep_group_id=local["id"], peer_ep_group_id=peer["id"],
                                          peer_address="not-an-address", psk=PSK)
        assert bad.value.status == 400 and "VPNPeerAddressNotResolved" in bad.value.message
        assert PSK not in bad.value.message
        with pytest.raises(PermanentSiteError) as bad:  # an IPv6 peer, and the router has no IPv6 gateway
            vpnapi.create_site_connection(conn, project_id=pid, name="bad", mark=mark, vpnservice_id=service["id"],
                                          ikepolicy_id=ike["id"], ipsecpolicy_id=ipsec["id"],
                                          local_ep_group_id=local["id"], peer_ep_group_id=peer["id"],
                                          peer_address="2001:db8::7", psk=PSK)
        assert bad.value.status == 400 and "ExternalNetworkHasNoSubnet" in bad.value.message
        with pytest.raises(PermanentSiteError) as bad:  # a subnet endpoint that does not exist
            vpnapi.create_endpoint_group(conn, project_id=pid, name="bad", mark=mark, kind="subnet",
                                         endpoints=["00000000-0000-4000-8000-000000000000"])
        assert bad.value.status == 400 and "NonExistingSubnetInEndpointGroup" in bad.value.message
        seen = project.conn.network.get(f"/vpn/vpnservices/{service['id']}").json()["vpnservice"]
        assert seen["project_id"] == pid  # the tenant's own client sees it as its own
    finally:
        for collection, ident in made:
            assert vpnapi.delete(conn, collection, ident) is True
    for collection, ident in made:
        assert vpnapi.delete(conn, collection, ident) is False
    assert vpnapi.find_marked(conn, "vpnservices", project_id=pid, mark=mark) == []
    assert vpnapi.connection_has_key(conn, made[0][1], PSK) is False
