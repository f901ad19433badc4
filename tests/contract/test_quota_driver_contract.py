"""Contract: the quota driver (``quota``, ``quota_batch``) against the sites, for another project.

Skyfleet's admin credential reads and sets the quotas of the site's projects in concurrent batches,
and asks which projects changed since its last round (Nova ``changes-since``, Cinder
``updated_at=gte:`` at 3.60, Neutron per-project counts). Each test calls the driver functions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from contract_support import Site, Tenant, quiet, skyfleet_auth, unique, wait_for

from skyfleet.drivers.openstack import quota_batch
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.quota import Endpoint, QuotaReading, project_by_id
from skyfleet.errors import PermanentSiteError

pytestmark = pytest.mark.contract


def _where(site: Site) -> Endpoint:
    return Endpoint(interface=site.cloud.get("interface", "public"), region=site.region)


@pytest.mark.covers("quota_batch.read_many", "quota_batch.write_many", "quota_batch.run_batch",
                    "quota_batch.Calls.call", "quota_batch.Calls.url", "quota.reading_of")
def test_read_and_set_quotas_of_another_project(site: Site, project: Tenant) -> None:
    session = SitePool().session(skyfleet_auth(site), timeout=60)
    pid = project.project_id
    keys = [(pid, "compute"), (pid, "volume"), (pid, "network")]
    before = quota_batch.read_many(session, _where(site), keys)
    for key in keys:
        reading = before[key]
        assert isinstance(reading, QuotaReading), (key, reading)
        assert reading.limits and all(v == 0 for v in reading.usage.values()), (key, reading)
    assert {"instances", "cores", "ram", "key_pairs"} <= set(before[(pid, "compute")].limits)
    assert {"volumes", "gigabytes", "snapshots"} <= set(before[(pid, "volume")].limits)
    assert {"network", "port", "security_group", "security_group_rule"} <= set(before[(pid, "network")].limits)

    written = quota_batch.write_many(session, _where(site), {
        (pid, "compute"): {"instances": 7, "cores": 9}, (pid, "volume"): {"volumes": 5, "gigabytes": 50},
        (pid, "network"): {"network": 6, "router": 2}})
    assert written == {(pid, "compute"): None, (pid, "volume"): None, (pid, "network"): None}
    network = project.conn.network.create_network(name=unique("quota"))
    volume = project.conn.block_storage.create_volume(name=unique("quota"), size=1)
    try:
        after = quota_batch.read_many(session, _where(site), keys)
        compute, block, net = (after[k] for k in keys)
        assert isinstance(compute, QuotaReading) and isinstance(block, QuotaReading)
        assert isinstance(net, QuotaReading)
        assert (compute.limits["instances"], compute.limits["cores"]) == (7, 9)
        assert (block.limits["volumes"], block.limits["gigabytes"]) == (5, 50)
        assert (block.usage["volumes"], block.usage["gigabytes"]) == (1, 1)
        assert (net.limits["network"], net.limits["router"], net.usage["network"]) == (6, 2, 1)
    finally:
        quiet(project.conn.block_storage.delete_volume, volume.id)
        quiet(project.conn.network.delete_network, network.id)

    bad = quota_batch.write_many(session, _where(site), {(pid, "compute"): {"instances": -5}})
    assert isinstance(bad[(pid, "compute")], PermanentSiteError) and bad[(pid, "compute")].status == 400


@pytest.mark.covers("quota_batch.change_hints", "quota_batch.Calls.pages", "quota_batch.digest",
                    "paging.with_query")
def test_change_hints_name_the_changed_project(site: Site, project: Tenant) -> None:
    session = SitePool().session(skyfleet_auth(site), timeout=60)
    pid = project.project_id
    volume = project.conn.block_storage.create_volume(name=unique("hint"), size=1)
    network = project.conn.network.create_network(name=unique("hint"))
    try:
        wait_for(lambda: project.conn.block_storage.get_volume(volume.id).status != "creating", timeout=60)
        updated = str(site.admin.block_storage.get_volume(volume.id).updated_at).replace("Z", "+00:00")
        moment = datetime.fromisoformat(updated)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        since = (moment - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        later = (moment + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        hints = quota_batch.change_hints(session, _where(site), {"compute": since, "volume": since, "network": None})
        assert hints.changed["volume"] is not None and pid in hints.changed["volume"]
        assert hints.changed["compute"] is not None and pid not in hints.changed["compute"]  # no server
        assert hints.network_counted and pid in hints.network_digests
        counts = {"network": 1}
        counts["security_group"] = len(list(site.admin.network.security_groups(project_id=pid)))
        counts["security_group_rule"] = len(list(site.admin.network.security_group_rules(project_id=pid)))
        counts = {k: v for k, v in counts.items() if v}
        assert hints.network_digests[pid] == quota_batch.digest(counts)
        # The site's Date header when it sends one: the simulator does, realstack's uwsgi services do
        # not (a site behind Apache or haproxy would); without it the quota round uses its own clock.
        assert hints.clock is None or parsedate_to_datetime(hints.clock).year >= 2024
        quiet_hints = quota_batch.change_hints(session, _where(site), {"compute": later, "volume": later})
        assert pid not in (quiet_hints.changed["volume"] or set())
        assert not quiet_hints.network_counted
    finally:
        quiet(project.conn.block_storage.delete_volume, volume.id)
        quiet(project.conn.network.delete_network, network.id)


@pytest.mark.covers("quota_batch.read_defaults")
def test_defaults_a_project_gets_where_nothing_was_set(site: Site, project: Tenant) -> None:
    session = SitePool().session(skyfleet_auth(site), timeout=60)
    defaults = quota_batch.read_defaults(session, _where(site), project.project_id)
    assert {"instances", "cores", "ram", "volumes", "gigabytes", "network", "port"} <= set(defaults)
    assert all(isinstance(v, int) and v >= -1 for v in defaults.values())
    current = quota_batch.read_many(session, _where(site), [(project.project_id, "compute")])
    reading = current[(project.project_id, "compute")]
    assert isinstance(reading, QuotaReading) and reading.limits["cores"] == defaults["cores"]


@pytest.mark.covers("quota.project_by_id")
def test_a_project_is_known_by_its_id_with_its_name_and_domain(site: Site, project: Tenant) -> None:
    session = SitePool().session(skyfleet_auth(site), timeout=60)
    auth_url = str(site.cloud["auth"]["auth_url"])
    found = project_by_id(session, auth_url=auth_url, project_id=project.project_id)
    assert found is not None
    assert (found.project_id, found.name, found.domain_name) == (project.project_id, project.project_name, "Default")
    assert project_by_id(session, auth_url=auth_url, project_id="0" * 32) is None
