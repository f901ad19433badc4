"""Contract: availability zones and hypervisors - how Skyfleet reads capacity (probe, inventory)."""

from __future__ import annotations

import openstack.exceptions
import pytest
from contract_support import Site, Tenant

pytestmark = pytest.mark.contract

SITE_INDEXES = [0, 1]


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

    # The inventory reads /os-hypervisors/detail without a microversion: capacity fields are there ...
    resp = admin.compute.get("/os-hypervisors/detail", raise_exc=False)
    assert resp.status_code == 200
    for hv in resp.json()["hypervisors"]:
        assert all(isinstance(hv[k], int) for k in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used",
                                                    "local_gb", "local_gb_used")), hv
        assert hv["vcpus"] > 0 and hv["memory_mb"] > 0

    # ... and from 2.88 on they are gone.
    resp = admin.compute.get("/os-hypervisors/detail", microversion="2.88", raise_exc=False)
    assert resp.status_code == 200
    assert "vcpus" not in resp.json()["hypervisors"][0]


def test_hypervisors_forbidden_to_members(project: Tenant) -> None:
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        list(project.conn.compute.hypervisors())
    assert err.value.status_code == 403
