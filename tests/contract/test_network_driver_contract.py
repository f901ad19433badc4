"""Contract: the declared-network driver (``skyfleet.drivers.openstack.networkapi``) against the sites.

What a declared network does in a site, called through the driver as Skyfleet's admin credential
working in a tenant's project: a network and a subnet (CIDR, no gateway or the default one, DHCP on or
off, DNS nameservers) found again by Skyfleet's mark only, a router with an interface on the subnet and
an external gateway set, moved and cleared, and every delete idempotent. The tenant's own client sees
the objects as its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import openstack.connection
import pytest
from contract_support import Site, Tenant, quiet, unique

from skyfleet.drivers.openstack import networkapi, syncapi
from skyfleet.errors import PermanentSiteError, SiteError

pytestmark = pytest.mark.contract


@pytest.fixture
def external(site: Site) -> Iterator[tuple[str, str]]:
    """Two external networks (id, name) made by the admin, each with a subnet for gateway addresses."""
    admin = site.admin
    made = []
    for cidr in ("198.51.100.0/24", "203.0.113.0/24"):
        net = admin.network.create_network(name=unique("ext"), is_router_external=True)
        admin.network.create_subnet(network_id=net.id, ip_version=4, cidr=cidr, enable_dhcp=False)
        made.append(net)
    try:
        yield made[0].id, made[1].name
    finally:
        for net in made:
            for port in admin.network.ports(network_id=net.id):
                quiet(admin.network.delete_port, port)
            quiet(admin.network.delete_network, net)


@pytest.mark.covers("networkapi.create_network", "networkapi.find_network", "networkapi.delete_network",
                    "networkapi.create_subnet", "networkapi.find_subnet", "networkapi.update_subnet",
                    "networkapi.delete_subnet")
def test_network_and_subnet_in_a_tenant_project(conn: openstack.connection.Connection, project: Tenant) -> None:
    mark, name = f"skyfleet:{unique('decl')}", unique("net")
    assert networkapi.find_network(conn, project_id=project.project_id, mark=mark) is None
    plain = project.conn.network.create_network(name=name)  # the tenant's own, same name, no mark
    net = networkapi.create_network(conn, name=name, project_id=project.project_id, mark=mark)
    try:
        assert (net["project_id"], net["name"], net["description"]) == (project.project_id, name, mark)
        found = networkapi.find_network(conn, project_id=project.project_id, mark=mark)
        assert found is not None and found["id"] == net["id"]  # by the mark: never the tenant's own
        assert networkapi.find_network(conn, project_id=project.project_id, mark=mark + "x") is None
        sub = networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name=name,
                                       mark=mark, cidr="10.93.4.0/24", gateway=True, enable_dhcp=False,
                                       dns_nameservers=["192.0.2.53", "192.0.2.54"])
        assert (sub["cidr"], sub["gateway_ip"], sub["enable_dhcp"], sub["project_id"]) == \
            ("10.93.4.0/24", "10.93.4.1", False, project.project_id)
        assert sub["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
        assert networkapi.find_subnet(conn, network_id=net["id"], mark=mark)["id"] == sub["id"]  # type: ignore[index]
        updated = networkapi.update_subnet(conn, sub["id"], enable_dhcp=True, dns_nameservers=["192.0.2.1"])
        assert (updated["enable_dhcp"], updated["dns_nameservers"]) == (True, ["192.0.2.1"])
        seen = project.conn.network.get_subnet(sub["id"])  # the tenant's own client sees it as its own
        assert (seen.cidr, seen.is_dhcp_enabled, seen.dns_nameservers) == ("10.93.4.0/24", True, ["192.0.2.1"])
        with pytest.raises(PermanentSiteError) as bad:  # Neutron checks the nameservers
            networkapi.update_subnet(conn, sub["id"], enable_dhcp=True, dns_nameservers=["not-an-ip"])
        assert bad.value.status == 400
        bare = networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name=name,
                                        mark="other", cidr="fd00:93:4::/64", gateway=False, enable_dhcp=True,
                                        dns_nameservers=[])
        assert (bare["gateway_ip"], bare["ip_version"]) == (None, 6)
        assert networkapi.delete_subnet(conn, bare["id"]) is True
        assert networkapi.delete_subnet(conn, bare["id"]) is False
        with pytest.raises(PermanentSiteError) as overlap:  # same network, overlapping CIDR
            networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name=name, mark=mark,
                                     cidr="10.93.4.128/25", gateway=True, enable_dhcp=False, dns_nameservers=[])
        assert overlap.value.status == 400
    finally:
        assert networkapi.delete_network(conn, net["id"]) is True
        quiet(project.conn.network.delete_network, plain)
    assert networkapi.delete_network(conn, net["id"]) is False
    assert networkapi.find_network(conn, project_id=project.project_id, mark=mark) is None
    assert list(project.conn.network.subnets(network_id=net["id"])) == []  # its subnet went with it


@pytest.mark.covers("networkapi.create_router", "networkapi.find_router", "networkapi.set_router_gateway",
                    "networkapi.router_subnets", "networkapi.add_router_interface",
                    "networkapi.remove_router_interface", "networkapi.delete_router",
                    "networkapi.find_external_network")
def test_router_with_interface_and_external_gateway(conn: openstack.connection.Connection, project: Tenant,
                                                    external: tuple[str, str]) -> None:
    first_id, second_name = external
    mark, name = f"skyfleet:{unique('decl')}", unique("router")
    assert networkapi.find_external_network(conn, first_id) == first_id
    second_id = networkapi.find_external_network(conn, second_name)
    assert second_id is not None and second_id != first_id
    assert networkapi.find_external_network(conn, unique("nothing")) is None
    net = networkapi.create_network(conn, name=name, project_id=project.project_id, mark=mark)
    sub = networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name=name, mark=mark,
                                   cidr="10.93.5.0/24", gateway=True, enable_dhcp=False, dns_nameservers=[])
    router = networkapi.create_router(conn, name=name, project_id=project.project_id, mark=mark,
                                      external_network_id=first_id)
    try:
        assert (router["project_id"], router["description"]) == (project.project_id, mark)
        assert router["external_gateway_info"]["network_id"] == first_id
        assert networkapi.find_router(conn, project_id=project.project_id, mark=mark)["id"] == router["id"]  # type: ignore[index]
        assert networkapi.router_subnets(conn, router["id"]) == set()
        info = networkapi.add_router_interface(conn, router["id"], sub["id"])
        assert info["subnet_id"] == sub["id"] and info["id"] == router["id"]
        assert networkapi.router_subnets(conn, router["id"]) == {sub["id"]}
        ports = list(project.conn.network.ports(device_id=router["id"], device_owner="network:router_interface"))
        assert [p.fixed_ips[0]["ip_address"] for p in ports] == ["10.93.5.1"]  # the subnet's gateway
        with pytest.raises(PermanentSiteError):  # a second interface on the same subnet
            networkapi.add_router_interface(conn, router["id"], sub["id"])
        moved = networkapi.set_router_gateway(conn, router["id"], second_id)
        assert moved["external_gateway_info"]["network_id"] == second_id
        address = moved["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        assert address.startswith("203.0.113.")
        cleared = networkapi.set_router_gateway(conn, router["id"], None)
        assert cleared["external_gateway_info"] is None
        assert project.conn.network.get_router(router["id"]).external_gateway_info is None
        assert networkapi.remove_router_interface(conn, router["id"], sub["id"]) is True
        assert networkapi.remove_router_interface(conn, router["id"], sub["id"]) is False
        assert networkapi.router_subnets(conn, router["id"]) == set()
    finally:
        networkapi.remove_router_interface(conn, router["id"], sub["id"])
        assert networkapi.delete_router(conn, router["id"]) is True
        networkapi.delete_network(conn, net["id"])
    assert networkapi.delete_router(conn, router["id"]) is False
    assert networkapi.remove_router_interface(conn, router["id"], sub["id"]) is False
    assert networkapi.find_router(conn, project_id=project.project_id, mark=mark) is None


@pytest.mark.covers("networkapi.network_ports", "networkapi.delete_port")
def test_ports_on_a_network_and_a_network_in_use(conn: openstack.connection.Connection, project: Tenant) -> None:
    """The ports a declared network's delete checks (whose they are, by ``device_owner``), Neutron's 409
    for a network still holding a port that is not its own, and the port deleted (idempotently)."""
    mark, name = f"skyfleet:{unique('decl')}", unique("inuse")
    net = networkapi.create_network(conn, name=name, project_id=project.project_id, mark=mark)
    try:
        networkapi.create_subnet(conn, network_id=net["id"], project_id=project.project_id, name=name, mark=mark,
                                 cidr="10.93.6.0/24", gateway=True, enable_dhcp=False, dns_nameservers=[])
        assert networkapi.network_ports(conn, net["id"]) == []
        port = project.conn.network.create_port(network_id=net["id"], device_owner="compute:nova")  # the tenant's
        (seen,) = networkapi.network_ports(conn, net["id"])
        assert (seen["id"], seen["device_owner"], seen["project_id"]) == \
            (port.id, "compute:nova", project.project_id)
        with pytest.raises(SiteError) as busy:  # Neutron refuses while a port that is not its own uses it
            _ = networkapi.delete_network(conn, net["id"])
        assert busy.value.status == 409
        assert networkapi.delete_port(conn, port.id) is True
        assert networkapi.delete_port(conn, port.id) is False
        assert networkapi.network_ports(conn, net["id"]) == []
    finally:
        networkapi.delete_network(conn, net["id"])
    assert networkapi.delete_network(conn, net["id"]) is False


@pytest.mark.covers("networkapi.find_security_group")
def test_the_internal_security_group_is_found_by_its_mark(conn: openstack.connection.Connection,
                                                          project: Tenant) -> None:
    """A declared network's internal group (made with the sync calls, marked in its description) is
    found again by the mark, with its rules; the tenant's own group of the same name is not."""
    mark, name = f"skyfleet:{unique('decl')}", unique("sg") + "-internal"
    plain = project.conn.network.create_security_group(name=name)  # the tenant's own, no mark
    assert networkapi.find_security_group(conn, project_id=project.project_id, mark=mark) is None
    group = syncapi.create_security_group(conn, name=name, description=mark, project_id=project.project_id)
    try:
        syncapi.create_rule(conn, {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
                                   "remote_ip_prefix": "10.93.7.0/24", "project_id": project.project_id})
        found = networkapi.find_security_group(conn, project_id=project.project_id, mark=mark)
        assert found is not None and found["id"] == group["id"] and found["project_id"] == project.project_id
        ingress = [r for r in found["security_group_rules"] if r["direction"] == "ingress"]
        assert [(r["remote_ip_prefix"], r["protocol"], r["ethertype"]) for r in ingress] == \
            [("10.93.7.0/24", None, "IPv4")]
    finally:
        assert syncapi.delete_security_group(conn, group["id"]) is True
        quiet(project.conn.network.delete_security_group, plain)
    assert networkapi.find_security_group(conn, project_id=project.project_id, mark=mark) is None
