"""Contract: neutron security groups, networks, subnets and ports as Skyfleet uses them."""

from __future__ import annotations

import ipaddress
import re

import openstack.exceptions
import pytest
from contract_support import Tenant, quiet, unique

pytestmark = pytest.mark.contract

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_security_group_with_cidr_and_remote_group_rules(project: Tenant) -> None:
    net = project.conn.network
    sg = net.create_security_group(name=unique("sg"), description="contract")
    try:
        assert UUID.match(sg.id)
        assert sg.project_id == project.project_id
        assert sg.description == "contract"
        # A new group allows all egress, IPv4 and IPv6, and nothing else.
        rules = list(net.security_group_rules(security_group_id=sg.id))
        assert sorted((r.direction, r.ether_type) for r in rules) == [("egress", "IPv4"), ("egress", "IPv6")]
        # neutron's own rules carry a null description, rules made through the API an empty
        # string: Skyfleet's drift audit must not see a difference between the two.
        assert [r.description for r in rules] == [None, None]

        cidr_rule = net.create_security_group_rule(
            security_group_id=sg.id,
            direction="ingress",
            ether_type="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_ip_prefix="10.0.0.0/8",
        )
        assert cidr_rule.security_group_id == sg.id
        assert (cidr_rule.direction, cidr_rule.ether_type, cidr_rule.protocol) == ("ingress", "IPv4", "tcp")
        assert (cidr_rule.port_range_min, cidr_rule.port_range_max) == (22, 22)
        assert cidr_rule.remote_ip_prefix == "10.0.0.0/8"
        assert cidr_rule.remote_group_id is None
        assert cidr_rule.description == ""

        group_rule = net.create_security_group_rule(
            security_group_id=sg.id, direction="ingress", ether_type="IPv4", remote_group_id=sg.id
        )
        assert group_rule.remote_group_id == sg.id
        assert group_rule.remote_ip_prefix is None
        assert group_rule.protocol is None
        assert group_rule.port_range_min is None and group_rule.port_range_max is None

        fetched = net.get_security_group(sg.id)
        rule_ids = {r["id"] for r in fetched.security_group_rules}
        assert {cidr_rule.id, group_rule.id} <= rule_ids and len(rule_ids) == 4

        with pytest.raises(openstack.exceptions.ConflictException) as dup:
            net.create_security_group_rule(
                security_group_id=sg.id,
                direction="ingress",
                ether_type="IPv4",
                protocol="tcp",
                port_range_min=22,
                port_range_max=22,
                remote_ip_prefix="10.0.0.0/8",
            )
        assert dup.value.status_code == 409
        with pytest.raises(openstack.exceptions.BadRequestException) as bad:
            net.create_security_group_rule(
                security_group_id=sg.id, direction="ingress", ether_type="IPv4", remote_ip_prefix="10.0.0.0/33"
            )
        assert bad.value.status_code == 400

        net.delete_security_group_rule(cidr_rule)
        with pytest.raises(openstack.exceptions.NotFoundException):
            net.get_security_group_rule(cidr_rule.id)
    finally:
        quiet(net.delete_security_group, sg)
    with pytest.raises(openstack.exceptions.NotFoundException) as gone:
        net.get_security_group(sg.id)
    assert gone.value.status_code == 404


def test_network_subnet_port_fixed_ip_and_mac(project: Tenant) -> None:
    net = project.conn.network
    network = net.create_network(name=unique("net"))
    try:
        assert UUID.match(network.id)
        assert network.status == "ACTIVE"
        assert network.is_admin_state_up is True
        assert network.project_id == project.project_id
        assert network.subnet_ids == []

        cidr = ipaddress.ip_network("10.88.0.0/24")
        subnet = net.create_subnet(network_id=network.id, name=unique("subnet"), ip_version=4, cidr=str(cidr))
        assert subnet.cidr == str(cidr)
        assert subnet.ip_version == 4
        assert subnet.gateway_ip == "10.88.0.1"
        assert subnet.allocation_pools == [{"start": "10.88.0.2", "end": "10.88.0.254"}]
        assert subnet.is_dhcp_enabled is True
        assert net.get_network(network.id).subnet_ids == [subnet.id]

        port = net.create_port(network_id=network.id, name=unique("port"), fixed_ips=[{"subnet_id": subnet.id}])
        assert port.network_id == network.id
        assert MAC.match(port.mac_address), port.mac_address
        assert len(port.fixed_ips) == 1
        fixed = port.fixed_ips[0]
        assert fixed["subnet_id"] == subnet.id
        ip = ipaddress.ip_address(fixed["ip_address"])
        assert ip in cidr and str(ip) != subnet.gateway_ip
        assert port.device_owner == "" and port.device_id == ""
        assert port.status == "DOWN"  # nothing is plugged into it
        assert port.project_id == project.project_id
        assert port.id in {p.id for p in net.ports(network_id=network.id)}

        # The same address twice is a conflict; an address outside the subnet is a bad request.
        with pytest.raises(openstack.exceptions.ConflictException) as dup:
            net.create_port(network_id=network.id, fixed_ips=[{"subnet_id": subnet.id, "ip_address": str(ip)}])
        assert dup.value.status_code == 409
        with pytest.raises(openstack.exceptions.BadRequestException) as bad:
            net.create_port(network_id=network.id, fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.99.0.5"}])
        assert bad.value.status_code == 400

        chosen = net.create_port(
            network_id=network.id, fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.88.0.50"}]
        )
        assert chosen.fixed_ips[0]["ip_address"] == "10.88.0.50"
        assert chosen.mac_address != port.mac_address

        # A network with ports in use cannot lose its subnet.
        with pytest.raises(openstack.exceptions.ConflictException) as in_use:
            net.delete_subnet(subnet)
        assert in_use.value.status_code == 409
        for p in (port, chosen):
            net.delete_port(p)
        with pytest.raises(openstack.exceptions.NotFoundException):
            net.get_port(port.id)
        net.delete_subnet(subnet)
    finally:
        for p in net.ports(network_id=network.id):
            quiet(net.delete_port, p)
        quiet(net.delete_network, network)
    with pytest.raises(openstack.exceptions.NotFoundException) as gone:
        net.get_network(network.id)
    assert gone.value.status_code == 404
