"""Cheap health audit cycles on simulated sites, requests counted at the simulator: a site whose token is
valid gets exactly one request per cheap cycle, every Nth cycle is a full probe with the same token, a
site that goes down is seen in the cycle it went down, a 401 forces one new login, and while a user
task runs the cheap calls keep to the background floor."""

from __future__ import annotations

import threading
from collections.abc import Callable

from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.reconcile.health import AuditReport
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

ZONES = ("GET", "/compute/v2.1/os-availability-zone")
LOGIN = ("POST", "/identity/v3/auth/tokens")


def make(runtime_factory: Callable[..., Runtime], sim: Simulator, names: list[str], **overrides: object) -> Runtime:
    runtime = runtime_factory(indicator_interval=0, **overrides)
    runtime.audit_memory.stagger = False  # full probes at cycles 1, N+1, 2N+1, ... for every site
    register_sites(runtime.factory, runtime.box, sim, names)
    return runtime


def audit(runtime: Runtime) -> AuditReport:
    report = runtime.audit_now()
    assert isinstance(report, AuditReport)
    return report


def site_row(runtime: Runtime, name: str) -> tuple[str, int, object, float | None]:
    with transaction(runtime.factory) as session:
        site = sites.get_site(session, name)
        return site.availability, site.consecutive_failures, site.last_audit_at, site.latency_ms


def test_a_valid_token_costs_one_request_per_cheap_cycle_and_every_nth_cycle_is_full(
        sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    name = sim.site_names()[0]
    runtime = make(runtime_factory, sim, [name], audit_full_every=3)
    sim.reset_counters(name)
    assert audit(runtime).cheap == 0  # cycle 1: the full probe, with this process's one login
    assert sim.counters(name)[LOGIN] == 1 and sum(sim.counters(name).values()) == 8
    for cycle in (2, 3):
        sim.reset_counters(name)
        before = site_row(runtime, name)
        report = audit(runtime)
        assert report.cheap == 1 and report.reachable == 1, cycle
        assert sim.counters(name) == {ZONES: 1}, cycle  # one request, and no login
        after = site_row(runtime, name)
        assert after[0] == "online" and after[2] != before[2] and after[3] is not None and after[3] > 0
    sim.reset_counters(name)
    assert audit(runtime).cheap == 0  # cycle 4 = 1 + N: the full probe again, with the same token
    seen = sim.counters(name)
    assert LOGIN not in seen and sim.count(name, "GET", "/image") >= 1 and seen[ZONES] == 1
    sim.reset_counters(name)
    assert audit(runtime).cheap == 1 and sim.counters(name) == {ZONES: 1}  # cycle 5: cheap again


def test_a_site_that_goes_down_is_offline_in_the_cycle_it_went_down(
        sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    down, up = sim.site_names()[1], sim.site_names()[2]
    runtime = make(runtime_factory, sim, [down, up], audit_full_every=100, offline_after_misses=1)
    audit(runtime)
    assert audit(runtime).cheap == 2
    sim.set_faults(down, down=True)
    report = audit(runtime)
    assert report.transitions == {down: "offline"} and report.cheap == 1  # the other site: cheap, still online
    availability, failures, _, _ = site_row(runtime, down)
    assert availability == "offline" and failures == 1
    sim.clear_faults(down)
    report = audit(runtime)  # not online: a full probe, which finds it back
    assert report.transitions == {down: "online"} and report.cheap == 1


def test_a_401_to_the_cheap_call_forces_one_new_login(sim: Simulator,
                                                        runtime_factory: Callable[..., Runtime]) -> None:
    name = sim.site_names()[3]
    runtime = make(runtime_factory, sim, [name], audit_full_every=100)
    audit(runtime)
    assert audit(runtime).cheap == 1
    sim.state(name).keystone.tokens.clear()  # the site forgets every token it gave
    sim.reset_counters(name)
    report = audit(runtime)
    assert report.cheap == 0 and report.reachable == 1 and not report.transitions
    assert sim.counters(name)[LOGIN] == 1  # one new login, by the full probe that the 401 started
    assert sim.count(name, "GET", "/image") >= 1
    assert site_row(runtime, name)[0] == "online"
    sim.reset_counters(name)
    assert audit(runtime).cheap == 1 and sim.counters(name) == {ZONES: 1}  # the new token is reused


def test_cheap_calls_keep_to_the_background_floor_while_a_user_task_runs(
        sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    names = sim.site_names()
    runtime = make(runtime_factory, sim, names, audit_full_every=100, background_floor=1)
    audit(runtime)
    for name in names:
        sim.set_faults(name, latency_ms=150)
    most, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            most[0] = max(most[0], runtime.lanes.background_in_flight)

    watcher = threading.Thread(target=watch)
    runtime.lanes.user_started()
    watcher.start()
    try:
        report = audit(runtime)
    finally:
        runtime.lanes.user_finished()
        stop.set()
        watcher.join(10)
    assert report.cheap == len(names) and most[0] == 1
    most[0] = 0
    stop.clear()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert audit(runtime).cheap == len(names)  # no user work: all at once
    finally:
        stop.set()
        watcher.join(10)
    assert most[0] > 1


def test_a_new_process_logs_in_and_makes_the_cheap_call_where_a_full_probe_was_recorded(
        sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    """A restarted controller (or a second one) does not re-read every version document of its fleet: a
    site recorded online with its zones costs a login and the cheap call in the new process's first cycle,
    and its full probe comes on its turn. A site whose zones are not the recorded ones gets the full probe
    in that cycle; one that refuses the login is seen failing at once, with one login tried."""
    same, moved, refusing = sim.site_names()[:3]
    first = make(runtime_factory, sim, [same, moved, refusing], audit_full_every=3, offline_after_misses=1)
    assert audit(first).cheap == 0  # never probed: full probes, recorded
    with transaction(first.factory) as session:
        recorded = sites.get_site(session, same).capabilities
        assert recorded["availability_zones"] == ["nova"] and len(recorded["services"]) >= 4
        sites.get_site(session, moved).capabilities = {**recorded, "availability_zones": ["elsewhere"]}
    second = runtime_factory(indicator_interval=0, audit_full_every=3, offline_after_misses=1)
    second.audit_memory.stagger = False  # the same database: another process's view of it
    sim.state(refusing).keystone.tokens.clear()
    sim.set_faults(refusing, auth_fail=True)
    for name in (same, moved, refusing):
        sim.reset_counters(name)
    report = audit(second)
    assert report.cheap == 1 and report.reachable == 2 and report.transitions == {refusing: "offline"}
    assert sim.counters(same) == {LOGIN: 1, ZONES: 1}  # a login and the cheap call: no version document
    assert sim.counters(moved)[LOGIN] == 1 and sim.count(moved, "GET", "/image") >= 1  # other zones: full
    assert sim.counters(refusing) == {LOGIN: 1}  # the refused login, once; no other call
    with transaction(second.factory) as session:
        assert sites.get_site(session, same).capabilities == recorded  # the versions kept as they were
        assert sites.get_site(session, moved).capabilities["availability_zones"] == ["nova"]
    sim.reset_counters(same)
    assert audit(second).cheap >= 1 and sim.counters(same) == {ZONES: 1}  # the login's token is kept
    sim.reset_counters(same)
    audit(second)  # its full probe's turn (every 3rd cycle): with the same token
    assert LOGIN not in sim.counters(same) and sim.count(same, "GET", "/image") >= 1
