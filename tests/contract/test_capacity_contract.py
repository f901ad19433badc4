"""Contract: availability zones, hypervisors and their statistics - how Skyfleet reads capacity."""

from __future__ import annotations

import openstack.exceptions
import pytest
from contract_support import Site, Tenant

pytestmark = pytest.mark.contract

SITE_INDEXES = [0, 1]
STAT_KEYS = {
    "count",
    "vcpus",
    "vcpus_used",
    "memory_mb",
    "memory_mb_used",
    "free_ram_mb",
    "local_gb",
    "local_gb_used",
    "free_disk_gb",
    "disk_available_least",
    "running_vms",
    "current_workload",
}


@pytest.mark.parametrize("index", SITE_INDEXES)
def test_availability_zones(sites: list[Site], index: int) -> None:
    admin = sites[index].admin
    zones = {z.name: z for z in admin.compute.availability_zones()}
    assert "nova" in zones
    assert zones["nova"].state == {"available": True}
    assert zones["nova"].hosts is None  # the summary view has no hosts
    assert "internal" not in zones  # only the detailed (admin) view shows it

    detailed = {z.name: z for z in admin.compute.availability_zones(details=True)}
    assert {"nova", "internal"} <= set(detailed)
    nova_hosts = detailed["nova"].hosts
    assert nova_hosts, "the compute host is listed in its zone"
    for services in nova_hosts.values():
        assert set(services["nova-compute"]) >= {"available", "active", "updated_at"}
        assert services["nova-compute"]["available"] is True
    internal_services = {svc for host in detailed["internal"].hosts.values() for svc in host}
    assert {"nova-conductor", "nova-scheduler"} <= internal_services


def test_availability_zones_as_member(project: Tenant) -> None:
    zones = {z.name: z for z in project.conn.compute.availability_zones()}
    assert zones["nova"].state == {"available": True}
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        list(project.conn.compute.availability_zones(details=True))
    assert err.value.status_code == 403


@pytest.mark.parametrize("index", SITE_INDEXES)
def test_hypervisors_and_statistics(sites: list[Site], index: int) -> None:
    admin = sites[index].admin
    hypervisors = list(admin.compute.hypervisors(details=True))
    assert len(hypervisors) >= 1
    for hv in hypervisors:
        assert hv.state == "up" and hv.status == "enabled"
        assert isinstance(hv.name, str) and hv.name
        assert len(hv.id) == 36  # a UUID since microversion 2.53
        assert hv.service_details["host"]

    # Statistics exist up to microversion 2.87 ...
    resp = admin.compute.get("/os-hypervisors/statistics", microversion="2.87", raise_exc=False)
    assert resp.status_code == 200, resp.text
    stats = resp.json()["hypervisor_statistics"]
    assert set(stats) == STAT_KEYS
    assert all(isinstance(v, int) for v in stats.values()), stats
    assert stats["count"] == len(hypervisors)
    assert stats["vcpus"] > 0 and stats["memory_mb"] > 0 and stats["local_gb"] > 0
    assert stats["free_ram_mb"] == stats["memory_mb"] - stats["memory_mb_used"]
    assert stats["free_disk_gb"] == stats["local_gb"] - stats["local_gb_used"]
    # ... and the per-hypervisor figures add up to them at the same microversion.
    resp = admin.compute.get("/os-hypervisors/detail", microversion="2.87", raise_exc=False)
    assert resp.status_code == 200
    detail = resp.json()["hypervisors"]
    assert sum(h["vcpus"] for h in detail) == stats["vcpus"]
    assert sum(h["memory_mb"] for h in detail) == stats["memory_mb"]
    assert sum(h["running_vms"] for h in detail) == stats["running_vms"]

    # From 2.88 the statistics API is gone (404) and hypervisors carry no capacity.
    resp = admin.compute.get("/os-hypervisors/statistics", microversion="2.88", raise_exc=False)
    assert resp.status_code == 404
    resp = admin.compute.get("/os-hypervisors/detail", microversion="2.88", raise_exc=False)
    assert resp.status_code == 200
    assert "vcpus" not in resp.json()["hypervisors"][0]


def test_capacity_in_placement(site: Site) -> None:
    """From microversion 2.88 on, capacity is read from placement inventories."""
    admin = site.admin
    providers = list(admin.placement.resource_providers())
    assert providers
    inventories = {inv.resource_class: inv for inv in admin.placement.resource_provider_inventories(providers[0])}
    assert {"VCPU", "MEMORY_MB", "DISK_GB"} <= set(inventories)
    for inv in inventories.values():
        assert isinstance(inv.total, int) and inv.total > 0
        assert isinstance(inv.allocation_ratio, float)
        assert isinstance(inv.reserved, int)


def test_hypervisors_forbidden_to_members(project: Tenant) -> None:
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        list(project.conn.compute.hypervisors())
    assert err.value.status_code == 403
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        list(project.conn.compute.services())
    assert err.value.status_code == 403


@pytest.mark.parametrize("index", SITE_INDEXES)
def test_compute_and_volume_services_are_up(sites: list[Site], index: int) -> None:
    """Skyfleet's health audit reads nova's and cinder's service lists (admin)."""
    admin = sites[index].admin
    nova = {s.binary: s for s in admin.compute.services()}
    assert {"nova-conductor", "nova-scheduler", "nova-compute"} <= set(nova)
    for svc in nova.values():
        assert (svc.state, svc.status) == ("up", "enabled"), svc
        assert isinstance(svc.host, str) and svc.host
        assert len(svc.id) == 36  # a UUID since microversion 2.53
        assert isinstance(svc.updated_at, str)
    assert nova["nova-compute"].availability_zone == "nova"
    assert nova["nova-scheduler"].availability_zone == "internal"

    cinder = {s.binary: s for s in admin.block_storage.services()}
    assert {"cinder-scheduler", "cinder-volume"} <= set(cinder)
    for svc in cinder.values():
        assert (svc.state, svc.status) == ("up", "enabled"), svc
        assert isinstance(svc.host, str) and svc.host
