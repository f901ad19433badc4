"""The batched quota calls against a simulated site: concurrent reads and writes, a refused token
renewed once, per-project permanent failures kept apart, temporary failures failing the batch."""

from __future__ import annotations

import openstack
import pytest

from skyfleet.drivers.openstack.quota import Endpoint, QuotaReading
from skyfleet.drivers.openstack.quota_batch import change_hints, digest, read_many, write_many
from skyfleet.drivers.openstack.session import make_session
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.simulator import Simulator
from skyfleet.simulator.neutron_base import QUOTA_TABLE
from tests.functional.conftest import site_auth

SITE = "site-0002"


def _session(sim: Simulator) -> tuple[object, Endpoint]:
    auth = site_auth(sim, SITE)
    return make_session(auth, timeout=10), Endpoint(interface=auth["interface"], region=auth["region_name"])


def test_reads_and_writes_many_projects_at_once(sim: Simulator) -> None:
    session, where = _session(sim)
    projects = [f"p-{i}" for i in range(40)]
    written = write_many(session, where, {(p, "compute"): {"cores": i + 1} for i, p in enumerate(projects)})  # type: ignore[arg-type]
    assert all(v is None for v in written.values()) and len(written) == 40
    read = read_many(session, where, [(p, s) for p in projects for s in ("compute", "volume", "network")])  # type: ignore[arg-type]
    assert len(read) == 120
    first = read[("p-0", "compute")]
    assert isinstance(first, QuotaReading) and first.limits["cores"] == 1 and first.usage["cores"] == 0
    last = read[("p-39", "compute")]
    assert isinstance(last, QuotaReading) and last.limits["cores"] == 40
    network = read[("p-3", "network")]
    assert isinstance(network, QuotaReading) and "port" in network.limits and "port" in network.usage


def test_a_refused_token_is_renewed_once(sim: Simulator) -> None:
    session, where = _session(sim)
    session.get_token()  # type: ignore[attr-defined]
    sim.state(SITE).keystone.tokens.clear()  # every token revoked behind the session's back
    sim.reset_counters(SITE)
    read = read_many(session, where, [("p-x", "compute")])  # type: ignore[arg-type]
    assert isinstance(read[("p-x", "compute")], QuotaReading)
    assert sim.count(SITE, "POST", "/identity/v3/auth/tokens") == 1


def test_failures_temporary_for_the_batch_permanent_per_project(sim: Simulator) -> None:
    session, where = _session(sim)
    bad = read_many(session, where, [("p-1", "compute"), ("p-2", "placement-nope")])  # type: ignore[arg-type]
    assert isinstance(bad[("p-1", "compute")], QuotaReading)
    assert isinstance(bad[("p-2", "placement-nope")], PermanentSiteError)
    sim.set_faults(SITE, error_rate=1.0, services=["compute"])
    with pytest.raises(TemporarySiteError):
        read_many(session, where, [("p-1", "compute")])  # type: ignore[arg-type]


def test_change_hints_name_the_changed_projects(sim: Simulator) -> None:
    session, where = _session(sim)
    openstack.connect(**sim.cloud(SITE, user="demo")).network.create_network(name="counted")
    first = change_hints(session, where, {"compute": None, "volume": None, "network": None})  # type: ignore[arg-type]
    assert first.changed == {"compute": None, "volume": None, "network": None}
    assert first.network_counted and first.clock
    hints = change_hints(session, where, {"compute": "2000-01-01T00:00:00Z", "volume": "2000-01-01T00:00:00Z",  # type: ignore[arg-type]
                                          "network": None})
    demo = next(p["id"] for p in sim.state(SITE).keystone.projects.values() if p["name"] == "demo")
    servers = {s["tenant_id"] for s in sim.state(SITE).nova.servers.values()}
    assert hints.changed["compute"] == servers
    assert hints.changed["volume"] == {v["_project"] for v in sim.state(SITE).cinder.volumes.values()}
    neutron = sim.state(SITE).neutron
    counts = {key: n for key, table in QUOTA_TABLE.items() if key != "subnetpool"
              if (n := sum(1 for r in getattr(neutron, table).values() if r.get("project_id") == demo))}
    assert counts and hints.network_digests[demo] == digest(counts)  # the demo project's seeded network, ports...
    future = change_hints(session, where, {"compute": "2999-01-01T00:00:00Z", "volume": "2999-01-01T00:00:00Z",  # type: ignore[arg-type]
                                           "network": None})
    assert future.changed["compute"] == set() and future.changed["volume"] == set()
