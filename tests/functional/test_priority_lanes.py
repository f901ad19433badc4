"""Priority lanes end to end in one process: while the worker pool runs a user-started task, the health
audit probes at most ``background_floor`` sites at once; when the task ends, the audit's waiting probes
all go at once. A task of an operation a periodic job started does not hold the audit back. Threads
meet on events and semaphores: no assertion depends on how fast the machine is."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.drivers.base import ProbeResult
from skyfleet.reconcile.health import AuditReport
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, TaskKind, register
from tests.engine_support import submit
from tests.support import FakeProber, HeldCalls, site_body

WAIT = 20.0  # only reached when the lanes are wrong
SITES = 8
FLOOR = 2
HOLD = "test.lanes.hold"


class Held:
    """The task kind's behaviour: each run says it started, then holds until released."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()


HELD = Held()


class _Empty(BaseModel):
    pass


def _observe(_ctx: SiteContext, _payload: BaseModel) -> str:
    HELD.started.release()
    HELD.release.wait(WAIT)
    return "ok"


if HOLD not in REGISTRY:
    register(TaskKind(name=HOLD, description="holds until released", payload=_Empty, observe=_observe,
                      diff=lambda _p, _o: None, apply=lambda _c, _p, _plan: {}, summary=lambda o: {}))


class BlockingProber(HeldCalls):
    """A probe that counts how many run at once and holds until released."""

    def __init__(self) -> None:
        super().__init__(WAIT)
        self.fake = FakeProber()

    def __call__(self, auth: dict[str, Any]) -> ProbeResult:
        self.hold()
        return self.fake(auth)


def test_the_health_audit_drops_to_the_floor_while_a_user_task_runs_and_goes_full_when_it_ends(
        runtime_factory: Callable[..., Runtime]) -> None:
    HELD.release.clear()
    prober = BlockingProber()
    runtime = runtime_factory(None, prober, background_floor=FLOOR, audit_concurrency=SITES,
                              periodic_jobs=False, engine_poll_interval=0.2)
    assert runtime.lanes.floor == FLOOR
    with transaction(runtime.factory) as session:
        made = [sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(site_body(f"s{i}")))
                for i in range(SITES)]
        refs = [operations.SiteRef(s.id, s.name) for s in made]
    submit(runtime.factory, HOLD, refs[:1])  # a user's operation
    with transaction(runtime.factory) as session:  # what a periodic job submits: no user
        operations.submit(session, kind=HOLD, targets=refs[1:2], payload={}, user_id=None, project_id=None,
                          now=utcnow())
    audit: list[object] = []
    auditor = threading.Thread(target=lambda: audit.append(runtime.audit_now()))
    try:
        runtime.start_workers(concurrency=4)
        runtime.wake()
        for _ in range(2):
            assert HELD.started.acquire(timeout=WAIT), "the worker pool never ran the tasks"
        assert runtime.lanes.user_in_flight == 1  # the periodic operation's task is not user work

        auditor.start()
        prober.await_entered(FLOOR)
        assert not prober.entered.acquire(timeout=0.5)  # the other probes wait for a background slot
        assert prober.most == FLOOR and runtime.lanes.background_in_flight == FLOOR

        HELD.release.set()  # the user task ends: every waiting probe may go, the first two still held
        prober.await_entered(SITES - FLOOR)
        assert prober.inside == SITES and prober.most == SITES
    finally:
        HELD.release.set()
        prober.release.set()
        if auditor.ident is not None:
            auditor.join(WAIT)
    assert not auditor.is_alive()
    [report] = audit
    assert isinstance(report, AuditReport) and report.sites == SITES and report.reachable == SITES


class BlockingSitePool:
    """Stands in for the site connection pool of an inventory refresh: counts the site reads running at
    once, holds each until released, then fails it (the refresh records the error and goes on)."""

    def __init__(self) -> None:
        self.probes = BlockingProber()

    def connection(self, auth: dict[str, Any], *, timeout: float) -> Any:
        self.probes(auth)
        raise ConnectionError("no site here")


def test_the_inventory_refresh_reads_at_most_the_floor_of_sites_at_once_while_user_work_runs(
        runtime_factory: Callable[..., Runtime]) -> None:
    from skyfleet.reconcile.inventory import refresh_fleet

    runtime = runtime_factory(None, None, background_floor=FLOOR)
    with transaction(runtime.factory) as session:
        for i in range(SITES):
            sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(site_body(f"s{i}")))
    pool = BlockingSitePool()
    reports: list[object] = []
    runtime.lanes.user_started()
    refresher = threading.Thread(target=lambda: reports.append(refresh_fleet(
        runtime.factory, box=runtime.box, concurrency=SITES, timeout=1, full=True, pool=pool,  # type: ignore[arg-type]
        lanes=runtime.lanes)))
    refresher.start()
    try:
        pool.probes.await_entered(FLOOR)
        assert not pool.probes.entered.acquire(timeout=0.5)
        assert pool.probes.most == FLOOR
        runtime.lanes.user_finished()
        pool.probes.await_entered(SITES - FLOOR)
        assert pool.probes.most == SITES
    finally:
        pool.probes.release.set()
        refresher.join(WAIT)
    [report] = reports
    assert getattr(report, "sites", None) == SITES and getattr(report, "failed", None) == SITES
