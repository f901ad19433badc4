"""Glance, Neutron and Cinder through openstacksdk: main calls, shapes, quotas and error bodies."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import openstack.exceptions
import pytest
import requests

from skyfleet.simulator import Simulator

# --- glance ----------------------------------------------------------------------------------------

def test_image_upload_download_and_hashes(conn: Any) -> None:
    payload = bytes(range(256)) * 1000
    image = conn.image.create_image(name="ubuntu", data=io.BytesIO(payload), disk_format="qcow2",
                                    container_format="bare", allow_duplicates=True, tags=["golden"],
                                    skyfleet_owner="fleet")
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.size == len(payload)
    assert image.checksum == hashlib.md5(payload).hexdigest()
    assert (image.hash_algo, image.hash_value) == ("sha512", hashlib.sha512(payload).hexdigest())
    assert image.properties["skyfleet_owner"] == "fleet" and image.tags == ["golden"]
    out = io.BytesIO()
    conn.image.download_image(image, output=out, chunk_size=4096)
    assert out.getvalue() == payload
    conn.image.update_image(image, name="ubuntu-2", min_ram=512)
    conn.image.add_tag(image, "verified")
    again = conn.image.get_image(image.id)
    assert again.name == "ubuntu-2" and again.min_ram == 512 and set(again.tags) == {"golden", "verified"}
    conn.image.delete_image(image)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(image.id)


def test_image_list_filters_and_pagination(sim: Simulator, conn: Any) -> None:
    ids = {conn.image.create_image(name=f"page-{i}", disk_format="raw", container_format="bare",
                                   allow_duplicates=True).id for i in range(7)}
    assert {i.id for i in conn.image.images(name="page-3")} <= ids
    listed = [i.id for i in conn.image.images(limit=2) if i.id in ids]
    assert sorted(listed) == sorted(ids)  # openstacksdk followed the "next" links
    assert {i.status for i in conn.image.images(status="queued")} == {"queued"}
    resp = requests.patch(f"{sim.base_url}/site-0001/image/v2/images/{next(iter(ids))}", json=[],
                          headers={"X-Auth-Token": conn.auth_token, "Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 415


# --- neutron ---------------------------------------------------------------------------------------

def test_networks_subnets_ports(conn: Any, demo: Any) -> None:
    net = conn.network.create_network(name="blue", provider_network_type="vlan", provider_segmentation_id=120,
                                      provider_physical_network="physnet1")
    assert (net.provider_network_type, net.provider_segmentation_id) == ("vlan", 120)
    subnet = conn.network.create_subnet(network_id=net.id, cidr="192.168.10.0/29", ip_version=4)
    assert subnet.gateway_ip == "192.168.10.1"
    assert subnet.allocation_pools == [{"start": "192.168.10.2", "end": "192.168.10.6"}]
    ports = [conn.network.create_port(network_id=net.id, device_owner="compute:nova", device_id=f"vm{i}")
             for i in range(5)]
    ips = [p.fixed_ips[0]["ip_address"] for p in ports]
    assert ips == [f"192.168.10.{i}" for i in range(2, 7)]
    assert len({p.mac_address for p in ports}) == 5
    with pytest.raises(openstack.exceptions.ConflictException, match="No more IP addresses"):
        conn.network.create_port(network_id=net.id)
    with pytest.raises(openstack.exceptions.ConflictException, match="ports still in use"):
        conn.network.delete_network(net)
    assert [p.id for p in conn.network.ports(device_id="vm3")] == [ports[3].id]
    for p in ports:
        conn.network.delete_port(p)
    conn.network.delete_network(net)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_network(net.id)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.network.create_network(name="x", provider_network_type="flat")


def test_neutron_error_shape(sim: Simulator, conn: Any) -> None:
    resp = requests.get(f"{sim.base_url}/site-0001/network/v2.0/networks/abc",
                        headers={"X-Auth-Token": conn.auth_token}, timeout=5)
    assert resp.status_code == 404
    assert resp.json() == {"NeutronError": {"type": "NetworkNotFound", "message": "Network abc could not be found.",
                                            "detail": ""}}


def test_default_security_group_and_rules(demo: Any) -> None:
    (group,) = [g for g in demo.network.security_groups() if g.name == "default"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in group.security_group_rules}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", group.id),
                     ("ingress", "IPv6", group.id)}
    web = demo.network.create_security_group(name="web")
    rule = demo.network.create_security_group_rule(security_group_id=web.id, direction="ingress", protocol="tcp",
                                                   port_range_min=443, port_range_max=443,
                                                   remote_ip_prefix="0.0.0.0/0", ethertype="IPv4")
    # neutron's own rules have a null description, API-made ones an empty string
    assert {r["description"] for r in group.security_group_rules} == {None}
    assert [r.description for r in demo.network.security_group_rules(security_group_id=web.id)
            if r.direction == "egress"] == [None, None]
    assert rule.description == ""
    with pytest.raises(openstack.exceptions.ConflictException):
        demo.network.create_security_group_rule(security_group_id=web.id, direction="ingress", protocol="tcp",
                                                port_range_min=443, port_range_max=443,
                                                remote_ip_prefix="0.0.0.0/0", ethertype="IPv4")
    demo.network.delete_security_group_rule(rule)
    demo.network.delete_security_group(web)


def test_router_floating_ip_subnetpool(conn: Any) -> None:
    public = conn.network.create_network(name="public", is_router_external=True)
    conn.network.create_subnet(network_id=public.id, cidr="203.0.113.0/24", ip_version=4)
    pool = conn.network.create_subnet_pool(name="pool", prefixes=["10.50.0.0/16"], default_prefixlen=24)
    inner = conn.network.create_network(name="inner")
    sub = conn.network.create_subnet(network_id=inner.id, subnetpool_id=pool.id, ip_version=4)
    assert sub.cidr == "10.50.0.0/24"
    router = conn.network.create_router(name="r1", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    port = conn.network.create_port(network_id=inner.id)
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert fip.floating_ip_address.startswith("203.0.113.") and fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_router(router)
    conn.network.delete_ip(fip)
    conn.network.remove_interface_from_router(router, subnet_id=sub.id)
    conn.network.delete_router(router)


def test_neutron_quota_details_and_over_quota(conn: Any) -> None:
    project = conn.current_project_id
    conn.network.update_quota(project, networks=len(list(conn.network.networks(project_id=project))) + 1)
    conn.network.create_network(name="last-one")
    with pytest.raises(openstack.exceptions.ConflictException, match=r"Quota exceeded for resources: \['network'\]"):
        conn.network.create_network(name="too-many")
    details = conn.network.get_quota(project, details=True)
    assert details.networks["used"] == details.networks["limit"]
    conn.network.delete_quota(project)
    assert conn.network.get_quota(project).networks == 100


# --- cinder ----------------------------------------------------------------------------------------

def test_volumes_snapshots_and_quota(sim: Simulator, conn: Any) -> None:
    volume = conn.block_storage.create_volume(size=2, name="data")
    assert volume.status == "creating"
    volume = conn.block_storage.wait_for_status(volume, "available", wait=5, interval=0.05)
    assert volume.attachments == [] and volume.size == 2
    snap = conn.block_storage.create_snapshot(volume_id=volume.id, name="snap")
    assert [s.id for s in conn.block_storage.snapshots()] == [snap.id]
    with pytest.raises(openstack.exceptions.BadRequestException, match="have snapshots"):
        conn.block_storage.delete_volume(volume)
    project = conn.current_project_id
    quota = conn.block_storage.get_quota_set(project, usage=True)
    assert quota.usage["volumes"] == 1 and quota.usage["gigabytes"] == 4
    conn.block_storage.update_quota_set(project, gigabytes=5)
    with pytest.raises(openstack.exceptions.HttpException) as info:
        conn.block_storage.create_volume(size=2, name="big")
    assert info.value.status_code == 413
    conn.block_storage.delete_snapshot(snap)
    conn.block_storage.delete_volume(volume)
    conn.block_storage.revert_quota_set(project)
    resp = requests.get(f"{sim.base_url}/site-0001/volume/v3/{project}/volumes/nope", timeout=5,
                        headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.60"})
    assert resp.headers["OpenStack-API-Version"] == "volume 3.60"
    assert resp.json() == {"itemNotFound": {"code": 404, "message": "Volume nope could not be found."}}
