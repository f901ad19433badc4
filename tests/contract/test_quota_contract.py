"""Contract: nova, neutron and cinder quotas - read, set, usage, and refusal over quota."""

from __future__ import annotations

import openstack.exceptions
import pytest
from contract_support import BootKit, Site, Tenant, quiet, unique
from openstack.compute.v2.server import Server

pytestmark = pytest.mark.contract

NOVA_KEYS = ("instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members")
NEUTRON_KEYS = ("networks", "subnets", "ports", "routers", "floating_ips", "security_groups", "security_group_rules")
CINDER_KEYS = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes")


def test_nova_quota_read_set_usage(site: Site, project: Tenant) -> None:
    admin = site.admin
    pid = project.project_id
    quota = admin.compute.get_quota_set(pid)
    for key in NOVA_KEYS:
        assert isinstance(getattr(quota, key), int), key
    defaults = admin.compute.get_quota_set_defaults(pid)
    assert (quota.instances, quota.cores, quota.ram) == (defaults.instances, defaults.cores, defaults.ram)

    admin.compute.update_quota_set(pid, instances=7, cores=9, ram=4096)
    quota = admin.compute.get_quota_set(pid)
    assert (quota.instances, quota.cores, quota.ram) == (7, 9, 4096)

    detail = admin.compute.get_quota_set(pid, usage=True)
    assert (detail.instances, detail.cores, detail.ram) == (7, 9, 4096)
    for key in ("instances", "cores", "ram"):
        assert detail.usage[key] == 0 and detail.reservation[key] == 0

    # The project sees its own limits and usage.
    limits = project.conn.compute.get_limits().absolute
    assert (limits.instances, limits.total_cores, limits.total_ram) == (7, 9, 4096)
    assert (limits.instances_used, limits.total_cores_used, limits.total_ram_used) == (0, 0, 0)
    # ... but may not change them.
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        project.conn.compute.update_quota_set(pid, instances=100)
    assert err.value.status_code == 403

    admin.compute.revert_quota_set(pid)
    assert admin.compute.get_quota_set(pid).instances == defaults.instances


def test_neutron_quota_read_set_usage(site: Site, project: Tenant) -> None:
    admin = site.admin
    pid = project.project_id
    quota = admin.network.get_quota(pid)
    for key in NEUTRON_KEYS:
        assert isinstance(getattr(quota, key), int), key
    admin.network.update_quota(pid, networks=3, ports=20, security_groups=4)
    quota = admin.network.get_quota(pid)
    assert (quota.networks, quota.ports, quota.security_groups) == (3, 20, 4)

    net = project.conn.network.create_network(name=unique("net"))
    try:
        detail = admin.network.get_quota(pid, details=True)
        assert detail.networks == {"limit": 3, "used": 1, "reserved": 0}
        for key in NEUTRON_KEYS:
            assert set(getattr(detail, key)) == {"limit", "used", "reserved"}, key
    finally:
        quiet(project.conn.network.delete_network, net)
    admin.network.delete_quota(pid)
    assert admin.network.get_quota(pid).networks == admin.network.get_quota_default(pid).networks


def test_cinder_quota_read_set_usage(site: Site, project: Tenant) -> None:
    admin = site.admin
    pid = project.project_id
    quota = admin.block_storage.get_quota_set(pid)
    for key in CINDER_KEYS:
        assert isinstance(getattr(quota, key), int), key
    admin.block_storage.update_quota_set(pid, volumes=5, gigabytes=50)
    quota = admin.block_storage.get_quota_set(pid)
    assert (quota.volumes, quota.gigabytes) == (5, 50)
    detail = admin.block_storage.get_quota_set(pid, usage=True)
    assert (detail.volumes, detail.gigabytes) == (5, 50)
    assert detail.usage["volumes"] == 0 and detail.usage["gigabytes"] == 0
    assert detail.reservation["volumes"] == 0
    admin.block_storage.revert_quota_set(pid)
    assert admin.block_storage.get_quota_set(pid).volumes == admin.block_storage.get_quota_set_defaults(pid).volumes


def test_nova_over_quota_is_403(site: Site, boot_kit: BootKit) -> None:
    """Booting beyond the instances or cores quota fails with 403 and names the resource."""
    admin = site.admin
    t = boot_kit.tenant
    conn = t.conn
    servers: list[Server] = []

    def boot() -> Server:
        server: Server = conn.compute.create_server(
            name=unique("server"),
            flavor_id=boot_kit.flavor_id,
            image_id=boot_kit.image_id,
            networks=[{"uuid": boot_kit.network_id}],
        )
        servers.append(server)
        return server

    try:
        admin.compute.update_quota_set(t.project_id, cores=0)
        with pytest.raises(openstack.exceptions.ForbiddenException) as err:
            boot()
        assert err.value.status_code == 403
        assert "Quota exceeded for cores" in str(err.value)

        admin.compute.update_quota_set(t.project_id, cores=20, instances=1)
        first = conn.compute.wait_for_server(boot(), status="ACTIVE", wait=180)
        assert conn.compute.get_limits().absolute.instances_used == 1
        with pytest.raises(openstack.exceptions.ForbiddenException) as err:
            boot()
        assert err.value.status_code == 403
        assert "Quota exceeded for instances" in str(err.value)
        assert [s.id for s in conn.compute.servers()] == [first.id]
    finally:
        for server in servers:
            quiet(conn.compute.delete_server, server)
        for server in servers:
            quiet(conn.compute.wait_for_delete, server, wait=120)
        admin.compute.revert_quota_set(t.project_id)


def test_neutron_over_quota_is_409(site: Site, project: Tenant) -> None:
    site.admin.network.update_quota(project.project_id, networks=0)
    try:
        with pytest.raises(openstack.exceptions.ConflictException) as err:
            project.conn.network.create_network(name=unique("net"))
        assert err.value.status_code == 409
        assert "Quota exceeded" in str(err.value)
    finally:
        site.admin.network.delete_quota(project.project_id)


def test_cinder_over_quota_is_413(site: Site, project: Tenant) -> None:
    site.admin.block_storage.update_quota_set(project.project_id, volumes=0)
    try:
        with pytest.raises(openstack.exceptions.HttpException) as err:
            project.conn.block_storage.create_volume(name=unique("vol"), size=1)
        assert err.value.status_code == 413
        assert "VolumeLimitExceeded" in str(err.value) or "exceeded" in str(err.value).lower()
        assert list(project.conn.block_storage.volumes()) == []
    finally:
        site.admin.block_storage.revert_quota_set(project.project_id)
