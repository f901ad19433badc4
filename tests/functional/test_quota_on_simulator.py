"""Global quota on simulated sites through the engine: usage moving, a site offline, a limit cut
below usage, and the overshoot Kingbird allowed, all through the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.config import RetryPolicy
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.domains.quotas.models import QuotaSiteState
from skyfleet.domains.sites.models import Site
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile import quota as rounds
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.kinds import quota as quota_kind
from skyfleet.simulator import Simulator, nova_base
from skyfleet.simulator.nova_servers import place_server, remove_server
from tests.engine_support import register_sites

SITES = ("site-0001", "site-0002", "site-0003")


def demo_id(sim: Simulator, site: str) -> str:
    return next(p["id"] for p in sim.state(site).keystone.projects.values() if p["name"] == "demo")


def set_cores(sim: Simulator, site: str, cores: int) -> None:
    """Usage behind Skyfleet's back: the demo project runs servers totalling ``cores`` vCPUs."""
    state = sim.state(site)
    pid = demo_id(sim, site)
    for key in [k for k, s in state.nova.servers.items() if s.get("tenant_id") == pid]:
        remove_server(state, key)
    if cores:
        place_server(state, pid, vcpus=cores, ram=512 * cores)


def nova_limit(sim: Simulator, site: str, key: str = "cores") -> int | None:
    value = sim.state(site).nova.quotas.get(demo_id(sim, site), {}).get(key)
    return None if value is None else int(value)


class Fleet:
    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.runtime, self.client = runtime, client
        self.engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))

    def round(self) -> dict[str, Any]:
        """Quota rounds, each followed by the engine until idle, until one writes nothing: collect, apply
        what it showed (reductions first; raises once those are confirmed, a round later)."""
        out: dict[str, Any] = {}
        for i in range(6):
            with transaction(self.runtime.factory) as session:
                out = rounds.round_(session, home_auth_url="", now=utcnow())
            self.engine.run_until_idle()
            if i >= 1 and not out["apply"]:
                break
        with transaction(self.runtime.factory) as session:
            rounds.runs.ingest(session, now=utcnow())
        return out

    def availability(self, site: str, value: str) -> None:
        with transaction(self.runtime.factory) as session:
            session.execute(update(Site).where(Site.name == site).values(availability=value))


@pytest.fixture
def fleet(sim: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> Iterator[Fleet]:
    """Three simulated sites under Skyfleet on SQLite and on PostgreSQL (the production store)."""
    runtime = runtime_factory(db=db_url)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    for site in SITES:
        set_cores(sim, site, 0)
        sim.state(site).nova.quotas.pop(demo_id(sim, site), None)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        assert client.put("/v1/quotas/g-demo", json={"limits": {"cores": 30}, "project_name": "demo",
                                                     "mode": "hard", "policy": "even"}).status_code == 200
        yield Fleet(runtime, client)


def test_hard_mode_writes_limits_that_add_up_to_the_global_limit(sim: Simulator, fleet: Fleet) -> None:
    set_cores(sim, "site-0001", 6)
    fleet.round()
    limits = {s: nova_limit(sim, s) for s in SITES}
    assert sum(v or 0 for v in limits.values()) == 30
    assert limits["site-0001"] is not None and limits["site-0001"] >= 6
    usage = fleet.client.get("/v1/quotas/g-demo/usage").json()
    assert usage["usage"]["cores"] == 6 and usage["limits"]["cores"] == 30
    assert {s["site_name"] for s in usage["sites"]} == set(SITES)
    assert all(s["observed_at"] for s in usage["sites"])
    assert {s["remote_project_id"] for s in usage["sites"]} == {demo_id(sim, s) for s in SITES}
    # usage moves: the limits follow, and still add up
    set_cores(sim, "site-0002", 12)
    fleet.round()
    limits = {s: nova_limit(sim, s) for s in SITES}
    assert sum(v or 0 for v in limits.values()) == 30 and (limits["site-0002"] or 0) >= 12


def test_offline_site_is_held_and_others_still_rebalance(sim: Simulator, fleet: Fleet) -> None:
    fleet.round()
    held = nova_limit(sim, "site-0003")
    assert held == 10
    fleet.availability("site-0003", "offline")
    sim.set_faults("site-0003", down=True)
    set_cores(sim, "site-0001", 15)
    fleet.round()
    assert nova_limit(sim, "site-0003") == held
    assert nova_limit(sim, "site-0001") >= 15  # type: ignore[operator]
    assert (nova_limit(sim, "site-0001") or 0) + (nova_limit(sim, "site-0002") or 0) == 30 - held
    usage = fleet.client.get("/v1/quotas/g-demo/usage").json()
    offline = next(s for s in usage["sites"] if s["site_name"] == "site-0003")
    assert offline["availability"] == "offline" and offline["applied"]["cores"] == held


def test_limit_lowered_below_usage_is_reported_and_nothing_deleted(sim: Simulator, fleet: Fleet) -> None:
    set_cores(sim, "site-0001", 8)
    set_cores(sim, "site-0002", 8)
    fleet.round()
    assert fleet.client.put("/v1/quotas/g-demo", json={"limits": {"cores": 10}}).status_code == 200
    fleet.round()
    assert nova_limit(sim, "site-0001") == 8 and nova_limit(sim, "site-0002") == 8
    assert nova_limit(sim, "site-0003") == 0
    assert len([s for s in sim.state("site-0001").nova.servers.values()
                if s["tenant_id"] == demo_id(sim, "site-0001")]) == 1
    usage = fleet.client.get("/v1/quotas/g-demo/usage").json()
    assert usage["over_limit"] == ["cores"]
    events = fleet.client.get("/v1/events?kind=quota.breached").json()["events"]
    assert len(events) == 1 and events[0]["project_id"] == "g-demo"


def test_soft_mode_gives_every_site_the_whole_headroom(sim: Simulator, fleet: Fleet) -> None:
    fleet.client.put("/v1/quotas/g-demo", json={"mode": "soft"})
    set_cores(sim, "site-0001", 4)
    fleet.round()
    assert [nova_limit(sim, s) for s in SITES] == [30, 26, 26]


def test_kingbird_overshoot_comparison_on_sites(sim: Simulator, fleet: Fleet) -> None:
    """Each site fills its own limit: soft (Kingbird's rule) reaches 3x the limit, hard mode never passes it."""
    totals = {}
    for mode in ("soft", "hard"):
        for site in SITES:
            set_cores(sim, site, 0)
        fleet.client.put("/v1/quotas/g-demo", json={"mode": mode})
        fleet.round()
        for site in SITES:  # every site's tenant boots up to what its own site allows
            set_cores(sim, site, nova_limit(sim, site) or 0)
        totals[mode] = sum(nova_limit(sim, s) or 0 for s in SITES)
    assert totals["soft"] == 90 and totals["hard"] == 30


def test_sync_on_demand_and_tenant_scope(sim: Simulator, fleet: Fleet) -> None:
    started = fleet.client.post("/v1/quotas/g-demo/sync")
    assert started.status_code == 202 and started.json()["collect_operation"]
    assert fleet.client.post("/v1/quotas/nobody/sync").status_code == 404
    fleet.engine.run_until_idle()
    assert fleet.client.post("/v1/quotas/g-demo/sync").json()["apply_operation"]
    fleet.engine.run_until_idle()
    assert all(nova_limit(sim, s) == 10 for s in SITES)


def test_periodic_round_in_embedded_workers(sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    """`skyfleet serve` alone (periodic quota round + in-process workers) converges the site limits."""
    runtime = runtime_factory(quota_interval=0.3, engine_poll_interval=0.2, audit_interval=3600)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    for site in SITES:
        set_cores(sim, site, 0)
        sim.state(site).nova.quotas.pop(demo_id(sim, site), None)
    with TestClient(create_app(runtime, start_workers=True)) as client:
        client.put("/v1/quotas/g-demo", json={"limits": {"cores": 9}, "project_name": "demo", "policy": "even"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [nova_limit(sim, s) for s in SITES] != [3, 3, 3]:
            time.sleep(0.1)
    assert [nova_limit(sim, s) for s in SITES] == [3, 3, 3]


def quota_reads(sim: Simulator, site: str) -> dict[str, int]:
    """Quota documents read on ``site`` per service since the counters were reset."""
    out = {"compute": 0, "volume": 0, "network": 0}
    for (method, path), n in sim.counters(site).items():
        if method == "GET" and ("os-quota-sets/" in path or "/v2.0/quotas/" in path):
            out[path.split("/")[1]] += n
    return out


NONE_READ = {"compute": 0, "volume": 0, "network": 0}


def test_rounds_read_only_what_a_site_says_changed(sim: Simulator, fleet: Fleet,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After a first full read, a round asks each site what changed (a few listings) and reads the
    quota documents of the changed projects only, per service."""
    monkeypatch.setattr(quota_kind, "CURSOR_MARGIN", timedelta(0))  # the Date header's second is the margin
    time.sleep(1.1)  # the fixture's own changes are older than any cursor
    fleet.round()
    time.sleep(1.1)
    sim.reset_counters()
    before = {s["site_name"]: s["observed_at"] for s in fleet.client.get("/v1/quotas/g-demo/usage").json()["sites"]}
    fleet.round()
    assert {s: quota_reads(sim, s) for s in SITES} == dict.fromkeys(SITES, NONE_READ)
    after = {s["site_name"]: s["observed_at"] for s in fleet.client.get("/v1/quotas/g-demo/usage").json()["sites"]}
    assert all(after[s] > before[s] for s in SITES)  # known unchanged as of the sites' last answer
    assert all(sim.count(s, "GET", "/compute/v2.1/servers/detail") == 2 for s in SITES)  # the hints, per round
    assert all(sim.count(s, "GET", "/network/v2.0/ports") == 2 for s in SITES)

    set_cores(sim, "site-0002", 4)  # a server appears
    pid = demo_id(sim, "site-0003")
    made = openstack.connect(**sim.cloud("site-0003", user="demo")).network.create_network(name="hinted")
    time.sleep(1.1)
    sim.reset_counters()
    fleet.round()
    reads = {s: quota_reads(sim, s) for s in SITES}
    assert reads["site-0001"] == NONE_READ
    assert reads["site-0002"]["compute"] >= 1 and reads["site-0002"]["volume"] == reads["site-0002"]["network"] == 0
    assert reads["site-0003"]["network"] >= 1 and reads["site-0003"]["compute"] == reads["site-0003"]["volume"] == 0
    usage = {s["site_name"]: s["usage"] for s in fleet.client.get("/v1/quotas/g-demo/usage").json()["sites"]}
    networks = [n for n in sim.state("site-0003").neutron.networks.values() if n["project_id"] == pid]
    assert made.id in {n["id"] for n in networks}
    assert usage["site-0002"]["cores"] == 4 and usage["site-0003"]["network"] == len(networks)

    remove_server(sim.state("site-0002"), next(iter(sim.state("site-0002").nova.servers)))  # and goes away
    fleet.round()
    usage = {s["site_name"]: s["usage"] for s in fleet.client.get("/v1/quotas/g-demo/usage").json()["sites"]}
    assert usage["site-0002"]["cores"] == 0


def test_a_project_due_its_full_read_is_read_whatever_the_hints(sim: Simulator, fleet: Fleet,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A change the hints cannot see (a limit set on the site itself) is found by the periodic full read."""
    monkeypatch.setattr(quota_kind, "CURSOR_MARGIN", timedelta(0))
    time.sleep(1.1)
    fleet.round()
    sim.state("site-0001").nova.quotas.setdefault(demo_id(sim, "site-0001"), {})["cores"] = 77  # behind our back
    with transaction(fleet.runtime.factory) as session:
        session.execute(update(QuotaSiteState).where(QuotaSiteState.site_id == site_id(fleet, "site-0001"))
                        .values(full_read_at=utcnow() - timedelta(days=1)))
    time.sleep(1.1)
    sim.reset_counters()
    with transaction(fleet.runtime.factory) as session:
        rounds.round_(session, home_auth_url="", now=utcnow())
    fleet.engine.run_until_idle()
    assert quota_reads(sim, "site-0001") == {"compute": 1, "volume": 1, "network": 1}
    assert quota_reads(sim, "site-0002") == NONE_READ
    fleet.round()  # read back, then the limit Skyfleet wants is written again
    assert nova_limit(sim, "site-0001") == 10


def site_id(fleet: Fleet, name: str) -> str:
    with transaction(fleet.runtime.factory) as session:
        return str(session.scalar(select(Site.id).where(Site.name == name)))


def marked(fleet: Fleet) -> set[str]:
    with transaction(fleet.runtime.factory) as session:
        return set(rounds.plan(session, only_marked=True).projects)


def test_a_round_plans_only_projects_whose_inputs_changed(sim: Simulator, fleet: Fleet,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota_kind, "CURSOR_MARGIN", timedelta(0))
    time.sleep(1.1)
    assert fleet.client.put("/v1/quotas/g-other", json={"limits": {"cores": 5}}).status_code == 200
    fleet.round()
    assert marked(fleet) == set()
    set_cores(sim, "site-0001", 2)
    time.sleep(1.1)
    with transaction(fleet.runtime.factory) as session:
        rounds.round_(session, home_auth_url="", now=utcnow())
    fleet.engine.run_until_idle()
    with transaction(fleet.runtime.factory) as session:
        rounds.runs.ingest(session, now=utcnow())
    assert marked(fleet) == {"g-demo"}  # its usage moved; g-other's did not
    fleet.round()
    assert marked(fleet) == set() and sum(nova_limit(sim, s) or 0 for s in SITES) == 30
    assert (nova_limit(sim, "site-0001") or 0) >= 2 + 28 // 3  # usage plus an even share of the headroom
    fleet.client.put("/v1/quotas/g-other", json={"limits": {"cores": 6}})
    assert marked(fleet) == {"g-other"}  # a changed global limit
    fleet.client.put("/v1/quotas/defaults", json={"limits": {"ram": 99999}})
    assert marked(fleet) == {"g-demo", "g-other"}  # changed defaults concern everyone


def test_a_site_without_block_storage_is_counted_without_it(sim: Simulator, fleet: Fleet,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No Cinder in a site's catalog: its compute and network usage count, no error is kept, and the
    project is not read in full again every round."""
    keystone = sim.state("site-0003").keystone
    openstack.connect(**sim.cloud("site-0003")).authorize()  # the catalog is built on first use
    full_catalog = keystone._catalog
    assert full_catalog is not None
    keystone._catalog = [s for s in full_catalog if s["type"] not in ("block-storage", "volumev3", "volumev2")]
    monkeypatch.setattr(quota_kind, "CURSOR_MARGIN", timedelta(0))
    try:
        set_cores(sim, "site-0003", 3)
        time.sleep(1.1)
        fleet.round()
        site = next(s for s in fleet.client.get("/v1/quotas/g-demo/usage").json()["sites"]
                    if s["site_name"] == "site-0003")
        assert site["last_error"] is None and site["usage"]["cores"] == 3 and "volumes" not in site["usage"]
        time.sleep(1.1)
        sim.reset_counters()
        fleet.round()
        assert quota_reads(sim, "site-0003") == NONE_READ
    finally:
        keystone._catalog = full_catalog


def test_a_site_still_collecting_delays_only_itself(sim: Simulator, fleet: Fleet) -> None:
    """A round starts a collection on every online site whose previous collection has finished."""
    with transaction(fleet.runtime.factory) as session:
        first = rounds.round_(session, home_auth_url="", now=utcnow())
    slow = site_id(fleet, "site-0003")
    with transaction(fleet.runtime.factory) as session:  # every task done but site-0003's (a hanging site)
        session.execute(update(Task).where(Task.operation_id == first["collect"], Task.site_id != slow)
                        .values(state="succeeded", result={"projects": {}, "unchanged": 0}, finished_at=utcnow()))
        second = rounds.round_(session, home_auth_url="", now=utcnow())
    with transaction(fleet.runtime.factory) as session:
        sites = set(session.scalars(select(Task.site_name).where(Task.operation_id == second["collect"])))
    assert sites == {"site-0001", "site-0002"}


def limits_now(sim: Simulator) -> list[int]:
    """What each site enforces for the demo project now (its native 20 until written)."""
    return [nova_limit(sim, s) or 20 for s in SITES]


def step(fleet: Fleet) -> None:
    """One quota round, then the engine until idle."""
    with transaction(fleet.runtime.factory) as session:
        rounds.round_(session, home_auth_url="", now=utcnow())
    fleet.engine.run_until_idle()


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_a_failed_write_is_never_counted_as_applied(sim: Simulator, fleet: Fleet, monkeypatch: pytest.MonkeyPatch,
                                                    failure: str) -> None:
    """G = 30 over three sites with the stock 20 cores. site-0001 fails its write (a 503 through the
    engine, or a refusal of that project's write alone): it may still enforce 20, so no site is raised
    into that room, round after round; once it accepts the cut, the others grow."""
    fleet.engine = Engine(fleet.runtime.factory, box=fleet.runtime.box,
                          config=EngineConfig(site_timeout=5, retry=RetryPolicy(max_attempts=1)))
    step(fleet)  # every site read: 20 each
    broken = demo_id(sim, "site-0001")
    real_write_many = quota_kind.write_many

    def refusing(session: Any, where: Any, writes: Any, **kw: Any) -> Any:
        out = real_write_many(session, where, {k: v for k, v in writes.items() if k != (broken, "compute")}, **kw)
        out.update({k: PermanentSiteError("HTTP 409: refused") for k in writes if k == (broken, "compute")})
        return out

    if failure == "503":
        sim.set_faults("site-0001", error_rate=1.0, services=["compute"])
    else:
        monkeypatch.setattr(quota_kind, "write_many", refusing)
    seen = [limits_now(sim)]
    for i in range(5):
        if i == 1:
            set_cores(sim, "site-0002", 12)  # site-0002 now wants to grow
        step(fleet)
        seen.append(limits_now(sim))
        assert seen[-1][0] == 20  # the broken site still enforces its 20
        assert sum(seen[-1]) <= sum(seen[-2])  # nothing grows while the cut is unconfirmed
        assert seen[-1][1] <= 10
    usage = fleet.client.get("/v1/quotas/g-demo/usage").json()
    first = next(s for s in usage["sites"] if s["site_name"] == "site-0001")
    assert first["applied"].get("cores") is None  # never recorded as written
    sim.clear_faults()
    monkeypatch.setattr(quota_kind, "write_many", real_write_many)
    for _ in range(4):
        step(fleet)
        assert sum(limits_now(sim)) <= max(30, sum(seen[-1]))
        seen.append(limits_now(sim))
    assert sum(seen[-1]) == 30 and seen[-1][1] >= 12


def test_a_site_never_observed_counts_at_its_default(sim: Simulator, fleet: Fleet) -> None:
    """site-0003 is offline when the quota is set (never read): it keeps its native 20 cores, so the
    two others share 40 - 20, never the whole 40; once it is back and read, the limits add up to 40."""
    assert fleet.client.put("/v1/quotas/g-demo", json={"limits": {"cores": 40}}).status_code == 200
    fleet.availability("site-0003", "offline")
    sim.set_faults("site-0003", down=True)
    step(fleet)  # the first round reads the two online sites (the stock 20 everywhere until then)
    for _ in range(3):
        step(fleet)
        assert sum(limits_now(sim)) <= 40
    assert limits_now(sim) == [10, 10, 20]
    sim.clear_faults()
    fleet.availability("site-0003", "online")
    for _ in range(4):
        step(fleet)
        assert sum(limits_now(sim)) <= 40
    assert sorted(limits_now(sim)) == [13, 13, 14]


def test_kingbird_mode_writes_kingbirds_rule_and_can_overshoot(sim: Simulator, fleet: Fleet) -> None:
    """mode kingbird: every site gets global - total usage + its usage (Kingbird's quota sync), so the
    sites together may allow up to N x the global limit."""
    assert fleet.client.put("/v1/quotas/g-demo", json={"mode": "kingbird"}).json()["mode"] == "kingbird"
    set_cores(sim, "site-0001", 4)
    set_cores(sim, "site-0002", 6)
    fleet.round()
    assert limits_now(sim) == [30 - 10 + 4, 30 - 10 + 6, 30 - 10 + 0]  # 50 allowed for a limit of 30
    assert fleet.client.get("/v1/quotas/g-demo/usage").json()["mode"] == "kingbird"


def test_sites_defaults_are_read_and_assumed_for_a_site_never_read(sim: Simulator, fleet: Fleet,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Sites whose Nova enforces 50 cores by default: the defaults are read at the first collection,
    and a site never read (offline) is assumed to enforce as much as the largest reported default,
    not the stock 20, so G = 100 leaves 25 + 25 to the two others."""
    monkeypatch.setitem(nova_base.QUOTA_DEFAULTS, "cores", 50)
    assert fleet.client.put("/v1/quotas/g-demo", json={"limits": {"cores": 100}}).status_code == 200
    fleet.availability("site-0003", "offline")
    sim.set_faults("site-0003", down=True)
    for _ in range(4):
        step(fleet)
    assert [nova_limit(sim, s) or 50 for s in SITES] == [25, 25, 50]


def test_a_quota_round_records_usage_series_a_tenant_reads_for_its_own_project_only(
        sim: Simulator, fleet: Fleet) -> None:
    from skyfleet.api.auth import Principal
    from skyfleet.api.deps import get_principal

    set_cores(sim, "site-0001", 6)
    set_cores(sim, "site-0002", 3)
    fleet.round()
    with transaction(fleet.runtime.factory) as session:  # a round past the sample interval samples anew
        out = rounds.round_(session, home_auth_url="", now=utcnow(), indicator_interval=0)
    assert out["samples"] > 0
    body = fleet.client.get("/v1/indicators", params={"project": "g-demo", "name": "quota.cores.*",
                                                      "since": "10m"}).json()
    by_name = {s["name"]: s for s in body["series"]}
    assert set(by_name) == {"quota.cores.used", "quota.cores.limit", "quota.cores.ratio"}
    assert by_name["quota.cores.ratio"]["project_id"] == "g-demo" and by_name["quota.cores.ratio"]["site"] is None
    assert by_name["quota.cores.ratio"]["unit"] == "ratio"
    # the first round sampled before any collection (0 used); the last one after it
    assert [v for _, v in by_name["quota.cores.used"]["points"]] == [0.0, 9.0]
    assert by_name["quota.cores.limit"]["points"][-1][1] == 30.0
    assert by_name["quota.cores.ratio"]["points"][-1][1] == pytest.approx(0.3)
    stepped = fleet.client.get("/v1/indicators", params={"project": "g-demo", "name": "quota.cores.ratio",
                                                         "since": "10m", "step": "5m"}).json()
    assert stepped["step"] == 300
    assert [v for _, v in stepped["series"][0]["points"]] in ([0.15], [0.0, 0.3])  # averaged per bucket
    # within the sample interval, a round writes none
    with transaction(fleet.runtime.factory) as session:
        assert rounds.round_(session, home_auth_url="", now=utcnow())["samples"] == 0

    for project, status in (("g-demo", 200), ("other", 403)):
        tenant = Principal(user_id="u", user_name="demo", project_id=project, project_name=project, roles=("reader",))
        fleet.client.app.dependency_overrides[get_principal] = lambda t=tenant: t  # type: ignore[attr-defined]
        try:
            own = fleet.client.get("/v1/indicators", params={"name": "quota.cores.ratio", "since": "10m"})
            theirs = fleet.client.get("/v1/indicators", params={"project": "g-demo", "since": "10m"})
            site = fleet.client.get("/v1/indicators", params={"site": "site-0001", "since": "10m"})
        finally:
            fleet.client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
        assert site.status_code == 403
        assert theirs.status_code == status, theirs.text
        names = {(s["project_id"], s["name"]) for s in own.json()["series"]}
        assert names == ({("g-demo", "quota.cores.ratio")} if project == "g-demo" else set()), names
        if status == 200:
            assert {s["project_id"] for s in theirs.json()["series"]} == {"g-demo"}
            assert all(s["name"].startswith("quota.") for s in theirs.json()["series"])
