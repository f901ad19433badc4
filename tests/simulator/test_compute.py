"""Nova: microversions, servers (BUILD -> ACTIVE, filters, changes-since, tenancy), flavors, keypairs,
quotas (enforced), limits, availability zones, hypervisors."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import openstack.exceptions
import pytest
import requests

from skyfleet.simulator import Simulator

PUBLIC_KEY = "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"k" * 36).decode() + " ci"


def _image(conn: Any) -> Any:
    return conn.image.create_image(name="cirros", data=io.BytesIO(b"boot" * 100), disk_format="qcow2",
                                   container_format="bare", allow_duplicates=True)


def _network(conn: Any, name: str = "net") -> Any:
    net = conn.network.create_network(name=name)
    conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4)
    return net


def test_version_document_and_microversion_echo(sim: Simulator, conn: Any) -> None:
    doc = requests.get(f"{sim.base_url}/site-0001/compute/v2.1", timeout=5).json()["version"]
    assert (doc["min_version"], doc["status"]) == ("2.1", "CURRENT")
    headers = {"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 2.61"}
    resp = requests.get(f"{sim.base_url}/site-0001/compute/v2.1/flavors/detail", headers=headers, timeout=5)
    assert resp.headers["OpenStack-API-Version"] == "compute 2.61"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.61"
    assert "extra_specs" in resp.json()["flavors"][0]
    old = requests.get(f"{sim.base_url}/site-0001/compute/v2.1/flavors/detail", timeout=5,
                       headers={"X-Auth-Token": conn.auth_token, "X-OpenStack-Nova-API-Version": "2.1"})
    assert "extra_specs" not in old.json()["flavors"][0]
    bad = requests.get(f"{sim.base_url}/site-0001/compute/v2.1/flavors", timeout=5,
                       headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 9.0"})
    assert bad.status_code == 406
    missing = requests.get(f"{sim.base_url}/site-0001/compute/v2.1/servers/nope", timeout=5,
                           headers={"X-Auth-Token": conn.auth_token})
    assert missing.json() == {"itemNotFound": {"code": 404, "message": "Instance nope could not be found."}}
    assert requests.get(f"{sim.base_url}/site-0001/compute/v2.1/flavors", timeout=5).status_code == 401


def test_server_lifecycle_and_listing(sim: Simulator, conn: Any, demo: Any) -> None:
    image, net = _image(conn), _network(conn)
    flavor = conn.compute.find_flavor("m1.small")
    server = conn.compute.create_server(name="web-1", image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": net.id}], metadata={"owner": "skyfleet"})
    assert conn.compute.get_server(server.id).status == "BUILD"
    server = conn.compute.wait_for_server(server, wait=5, interval=0.05)
    assert server.status == "ACTIVE" and server.metadata == {"owner": "skyfleet"}
    (addr,) = server.addresses["net"]
    assert addr["addr"].startswith("10.1.0.") and addr["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e")
    ports = list(conn.network.ports(device_id=server.id))
    assert [p.device_owner for p in ports] == ["compute:nova"]

    since = time.time() - 1
    assert [s.name for s in conn.compute.servers(name="^web")] == ["web-1"]
    assert list(conn.compute.servers(status="SHUTOFF")) == []
    assert list(demo.compute.servers()) == []  # demo project sees none of admin's servers
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.compute.get_server(server.id)

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=5, interval=0.05)
    assert list(conn.network.ports(device_id=server.id)) == []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    changed = list(conn.compute.servers(changes_since=stamp))
    assert [(s.id, s.status) for s in changed] == [(server.id, "DELETED")]


def test_all_tenants_for_admin_only(sim: Simulator, conn: Any, demo: Any) -> None:
    image = _image(conn)
    shared = conn.network.create_network(name="shared", shared=True)
    conn.network.create_subnet(network_id=shared.id, cidr="10.9.0.0/24", ip_version=4)
    mine = demo.compute.create_server(name="demo-vm", image_id=image.id, flavor_id="1",
                                      networks=[{"uuid": shared.id}])
    names = {s.name for s in conn.compute.servers(all_projects=True)}
    assert "demo-vm" in names
    assert "demo-vm" not in {s.name for s in conn.compute.servers()}
    assert {s.name for s in demo.compute.servers(all_projects=True)} == {"demo-vm"}
    demo.compute.delete_server(mine)


def test_server_create_errors(conn: Any) -> None:
    image = _image(conn)
    with pytest.raises(openstack.exceptions.BadRequestException, match="Flavor 999 could not be found"):
        conn.compute.create_server(name="x", image_id=image.id, flavor_id="999", networks="none")
    with pytest.raises(openstack.exceptions.BadRequestException, match="Image nope could not be found"):
        conn.compute.create_server(name="x", image_id="nope", flavor_id="1", networks="none")


def test_quota_enforced_like_nova(sim: Simulator, conn: Any) -> None:
    image = _image(conn)
    project = conn.current_project_id
    conn.compute.update_quota_set(project, instances=1)
    first = conn.compute.create_server(name="q1", image_id=image.id, flavor_id="1", networks="none")
    with pytest.raises(openstack.exceptions.ForbiddenException) as info:
        conn.compute.create_server(name="q2", image_id=image.id, flavor_id="1", networks="none")
    assert "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances" in str(info.value)
    detail = conn.compute.get_quota_set(project, usage=True)
    assert detail.instances == 1 and detail.usage["instances"] == 1
    limits = conn.compute.get_limits()
    assert limits.absolute.instances == 1 and limits.absolute.instances_used == 1
    conn.compute.delete_server(first)
    conn.compute.revert_quota_set(project)
    assert conn.compute.get_quota_set(project).instances == 10


def test_flavor_extra_specs_and_access(conn: Any, demo: Any) -> None:
    flavor = conn.compute.create_flavor(name="gpu.large", ram=4096, vcpus=4, disk=40, is_public=False)
    conn.compute.create_flavor_extra_specs(flavor, {"hw:cpu_policy": "dedicated"})
    assert conn.compute.fetch_flavor_extra_specs(flavor).extra_specs == {"hw:cpu_policy": "dedicated"}
    conn.compute.update_flavor_extra_specs_property(flavor, "hw:cpu_policy", "shared")
    assert conn.compute.get_flavor_extra_specs_property(flavor, "hw:cpu_policy") == "shared"
    assert demo.compute.find_flavor("gpu.large") is None
    conn.compute.flavor_add_tenant_access(flavor, demo.current_project_id)
    assert [a["tenant_id"] for a in conn.compute.get_flavor_access(flavor)] == [demo.current_project_id]
    assert demo.compute.find_flavor("gpu.large") is not None
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.flavor_add_tenant_access(flavor, demo.current_project_id)
    conn.compute.flavor_remove_tenant_access(flavor, demo.current_project_id)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.compute.create_flavor(name="nope", ram=1, vcpus=1, disk=1)
    conn.compute.delete_flavor(flavor)


def test_keypairs_per_user(conn: Any, demo: Any) -> None:
    kp = conn.compute.create_keypair(name="ci", public_key=PUBLIC_KEY)
    assert kp.fingerprint.count(":") == 15
    assert [k.name for k in conn.compute.keypairs()] == ["ci"]
    assert list(demo.compute.keypairs()) == []
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.create_keypair(name="ci", public_key=PUBLIC_KEY)
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.compute.create_keypair(name="bad", public_key="not a key")
    conn.compute.delete_keypair("ci")
    assert conn.compute.find_keypair("ci") is None


def test_zones_and_hypervisors(conn: Any) -> None:
    assert [z.name for z in conn.compute.availability_zones()] == ["nova"]
    assert {z.name for z in conn.compute.availability_zones(details=True)} == {"nova", "internal"}
    (hyp,) = list(conn.compute.hypervisors(details=True))
    assert hyp.name == "compute-0" and hyp.state == "up"


def test_compute_and_volume_service_lists(conn: Any, demo: Any) -> None:
    """nova's and cinder's os-services as the real sites answered them (moved from the contract suite:
    Skyfleet itself does not read them)."""
    nova = {s.binary: s for s in conn.compute.services()}
    assert {"nova-conductor", "nova-scheduler", "nova-compute"} <= set(nova)
    for svc in nova.values():
        assert (svc.state, svc.status) == ("up", "enabled"), svc
        assert isinstance(svc.host, str) and svc.host and len(svc.id) == 36
    assert nova["nova-compute"].availability_zone == "nova"
    assert nova["nova-scheduler"].availability_zone == "internal"
    cinder = {s.binary: s for s in conn.block_storage.services()}
    assert {"cinder-scheduler", "cinder-volume"} <= set(cinder)
    assert all((s.state, s.status) == ("up", "enabled") for s in cinder.values())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.services())
