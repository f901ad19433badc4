"""The engine step by step with a fake clock and a scripted kind: backoff, permanent failures, leases,
fencing, the per-site cap, the offline-site circuit, worker heartbeats and the tasks of dead workers
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import RetryPolicy
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations import stages
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.reconcile.engine import Engine, EngineConfig, Outcome
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, TaskKind, register
from skyfleet.reconcile.policy import FakeClock
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.secrets import SecretBox
from tests.engine_support import fresh_clock, operation_state, set_availability, submit, tasks_of
from tests.support import site_body


class Script:
    """What the fake kind does per site: a list of outcomes consumed in order ("ok", "temp", "perm")."""

    def __init__(self) -> None:
        self.plan: dict[str, list[str]] = {}
        self.calls: list[str] = []

    def observe(self, ctx: SiteContext, _payload: BaseModel) -> str:
        self.calls.append(ctx.site_name)
        step = (self.plan.get(ctx.site_name) or ["ok"]).pop(0) if self.plan.get(ctx.site_name) else "ok"
        if step == "temp":
            raise TemporarySiteError("HTTP 503: try later", status=503)
        if step == "perm":
            raise PermanentSiteError("HTTP 400: Invalid input for field name", status=400)
        return step


SCRIPT = Script()


class Empty(BaseModel):
    pass


if "test.fake" not in REGISTRY:
    register(TaskKind(name="test.fake", description="scripted", payload=Empty,
                      observe=lambda ctx, p: SCRIPT.observe(ctx, p), diff=lambda _p, _o: None,
                      apply=lambda _c, _p, _plan: {}, summary=lambda o: {"seen": o}))


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    SCRIPT.plan.clear()
    SCRIPT.calls.clear()
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


BOX = SecretBox([Fernet.generate_key().decode()])
POLICY = RetryPolicy(initial=10, multiplier=2, max_delay=100, jitter=0, max_attempts=3)



def make(factory: sessionmaker[Session], clock: FakeClock, owner: str = "w1", **overrides: Any) -> Engine:
    config = EngineConfig(**{"lease_seconds": 30, "retry": POLICY, "per_site": 2, **overrides})
    return Engine(factory, box=BOX, config=config, clock=clock, owner=owner)


def add_sites(factory: sessionmaker[Session], *names: str) -> list[operations.SiteRef]:
    with transaction(factory) as session:
        made = [sites.create_site(session, box=BOX, data=SiteCreate.model_validate(site_body(n))) for n in names]
        return [operations.SiteRef(s.id, s.name) for s in made]


def test_success_is_recorded_and_closes_the_operation(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    assert make(factory, clock).run_until_idle() == 2
    assert {t.state for t in tasks_of(factory, op)} == {"succeeded"}
    assert all(t.result == {"changed": False, "seen": "ok"} and t.attempts == 1 for t in tasks_of(factory, op))
    assert operation_state(factory, op) == "succeeded"


def test_temporary_errors_back_off_exponentially_then_succeed(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    op = submit(factory, "test.fake", add_sites(factory, "a"))
    SCRIPT.plan["a"] = ["temp", "temp", "ok"]
    assert engine.run_until_idle() == 1
    [task] = tasks_of(factory, op)
    assert (task.state, task.attempts, task.last_error) == ("pending", 1, "HTTP 503: try later")
    assert task.next_attempt_at == clock.now() + timedelta(seconds=10)
    clock.advance(9)
    assert engine.run_until_idle() == 0  # not due yet
    clock.advance(1)
    assert engine.run_until_idle() == 1
    assert tasks_of(factory, op)[0].next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(20)
    assert engine.run_until_idle() == 1
    [task] = tasks_of(factory, op)
    assert (task.state, task.attempts, task.last_error) == ("succeeded", 3, None)


def test_retries_stop_after_max_attempts_with_the_last_error(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    SCRIPT.plan["a"] = ["temp"] * 5
    for _ in range(4):
        engine.run_until_idle()
        clock.advance(100)
    tasks = {t.site_name: t for t in tasks_of(factory, op)}
    assert tasks["a"].state == "failed" and tasks["a"].attempts == 3
    assert "HTTP 503: try later" in (tasks["a"].last_error or "") and "3 attempts" in (tasks["a"].last_error or "")
    assert tasks["b"].state == "succeeded"
    assert operation_state(factory, op) == "failed"
    SCRIPT.plan["a"] = []  # the site is healthy again
    with transaction(factory) as session:
        operation = operations.get_operation(session, op, project_id=None, admin=True)
        assert operations.retry(session, operation=operation, now=clock.now()) == 1
    assert engine.run_until_idle() == 1
    assert operation_state(factory, op) == "succeeded"


def test_permanent_error_fails_at_once(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    op = submit(factory, "test.fake", add_sites(factory, "a"))
    SCRIPT.plan["a"] = ["perm"]
    make(factory, clock).run_until_idle()
    [task] = tasks_of(factory, op)
    assert (task.state, task.attempts) == ("failed", 1)
    assert task.last_error == "HTTP 400: Invalid input for field name"


def test_offline_site_waits_without_burning_attempts(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    set_availability(factory, ["a"], "offline")
    assert engine.run_until_idle() == 1
    clock.advance(3600)
    assert engine.run_until_idle() == 0
    task = next(t for t in tasks_of(factory, op) if t.site_name == "a")
    assert (task.state, task.attempts) == ("pending", 0)
    set_availability(factory, ["a"], "online")
    assert engine.run_until_idle() == 1
    assert operation_state(factory, op) == "succeeded"


def test_expired_lease_is_taken_over_and_the_old_owner_is_fenced(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    first, second = make(factory, clock, owner="w1"), make(factory, clock, owner="w2")
    op = submit(factory, "test.fake", add_sites(factory, "a"))
    [work] = first.lease(10)  # w1 leases, then stalls (or dies)
    assert second.lease(10) == []  # the lease holds
    clock.advance(31)
    [taken] = second.lease(10)
    assert taken.leased.attempts == 2
    assert not first.record(work, first.execute(work))  # w1's late outcome is discarded
    assert second.record(taken, second.execute(taken))
    [task] = tasks_of(factory, op)
    assert task.state == "succeeded" and task.lease_owner is None


def test_renewed_lease_is_not_taken(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    first, second = make(factory, clock, owner="w1"), make(factory, clock, owner="w2")
    submit(factory, "test.fake", add_sites(factory, "a"))
    [work] = first.lease(10)
    for _ in range(5):
        clock.advance(20)
        assert first.renew([work.leased.owner]) == 1
        assert second.lease(10) == []


def test_a_leased_task_knows_whether_a_user_started_its_operation(factory: sessionmaker[Session]) -> None:
    engine = make(factory, fresh_clock())
    refs = add_sites(factory, "a", "b")
    by_user = submit(factory, "test.fake", refs[:1])
    with transaction(factory) as session:  # what a periodic job submits: no user
        periodic = operations.submit(session, kind="test.fake", targets=refs[1:], payload={}, user_id=None,
                                     project_id=None, now=utcnow()).id
    leased = {w.leased.operation_id: w.leased.by_user for w in engine.lease(10)}
    assert leased == {by_user: True, periodic: False}


def test_a_users_tasks_are_leased_before_an_earlier_periodic_backlog(factory: sessionmaker[Session]) -> None:
    engine = make(factory, fresh_clock())
    refs = add_sites(factory, *(f"s{n:02d}" for n in range(12)))
    with transaction(factory) as session:  # a drift audit's backlog, queued first
        periodic = operations.submit(session, kind="test.fake", targets=refs, payload={}, user_id=None,
                                     project_id=None, now=utcnow() - timedelta(seconds=30)).id
    by_user = submit(factory, "test.fake", refs[:3])  # then a user's change
    first = engine.lease(4)
    assert Counter(w.leased.operation_id for w in first) == {by_user: 3, periodic: 1}, first
    assert {w.leased.operation_id for w in engine.lease(100)} == {periodic}  # the backlog still runs


def test_per_site_cap_limits_tasks_in_flight(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock, per_site=2)
    refs = add_sites(factory, "a", "b")
    for _ in range(3):
        submit(factory, "test.fake", refs)
    batch = engine.lease(100)
    per_site = sorted(w.leased.site_name for w in batch)
    assert per_site == ["a", "a", "b", "b"]
    assert make(factory, clock, owner="w2").lease(100) == []  # the cap holds across workers


def test_cancel_discards_running_outcome(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    [work, _other] = engine.lease(10)
    with transaction(factory) as session:
        operation = operations.get_operation(session, op, project_id=None, admin=True, for_update=True)
        assert operations.cancel(session, operation=operation, now=clock.now()) == 2
    assert not engine.record(work, engine.execute(work))
    assert {t.state for t in tasks_of(factory, op)} == {"cancelled"}
    assert operation_state(factory, op) == "cancelled"


def test_deleted_site_fails_its_task_with_a_reason(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    op = submit(factory, "test.fake", add_sites(factory, "a"))
    with transaction(factory) as session:
        sites.delete_site(session, site=sites.get_site(session, "a"))
    make(factory, clock).run_until_idle()
    [task] = tasks_of(factory, op)
    assert task.state == "failed" and task.last_error == "site a is no longer registered"


def test_heartbeat_keeps_a_lease_past_expiry_and_a_dead_workers_tasks_return_early(
        factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    first = make(factory, clock, owner="w1", heartbeat_seconds=2, worker_ttl=6)
    second = make(factory, clock, owner="w2", heartbeat_seconds=2, worker_ttl=6)
    op = submit(factory, "test.fake", add_sites(factory, "a"))
    [work] = first.lease(10)
    for _ in range(50):  # 100 s: the task outlives its 30 s lease while its worker beats
        clock.advance(2)
        first.heartbeat([work.leased.owner])
        assert second.heartbeat([]) == 0
        assert second.lease(10) == []
    clock.advance(2)  # w1 dies: no more beats
    assert second.heartbeat([]) == 0
    clock.advance(5)  # 7 s of silence > the 6 s TTL, far less than the 30 s lease
    assert second.heartbeat([]) == 1
    [taken] = second.lease(10)
    assert taken.leased.task_id == work.leased.task_id and taken.leased.attempts == 2
    assert not first.record(work, first.execute(work))  # the dead worker's late outcome is fenced off
    assert second.record(taken, second.execute(taken))
    assert operation_state(factory, op) == "succeeded"


def test_worker_pool_beat_renews_the_leases_it_holds(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    engine = make(factory, clock, owner="w1", heartbeat_seconds=2, worker_ttl=6)
    other = make(factory, clock, owner="w2")
    submit(factory, "test.fake", add_sites(factory, "a"))
    pool = WorkerPool(engine, concurrency=2, poll_interval=1)
    [work] = engine.lease(10)
    pool._held[work.leased.owner] += 1  # in flight in this pool (its executor is not started)
    for _ in range(20):  # 80 s
        clock.advance(4)
        pool.beat()
        assert other.lease(10) == []
    pool._held.clear()  # the task finished here without a recorded outcome: nothing renews it now
    clock.advance(31)
    assert len(other.lease(10)) == 1


def test_a_worker_back_from_a_database_outage_reaps_no_one_at_once(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    first = make(factory, clock, owner="w1", heartbeat_seconds=2, worker_ttl=6)
    second = make(factory, clock, owner="w2", heartbeat_seconds=2, worker_ttl=6)
    submit(factory, "test.fake", add_sites(factory, "a"))
    first.heartbeat([])
    [work] = first.lease(10)
    clock.advance(20)  # both silent (the database was down for everyone)
    assert second.heartbeat([]) == 0  # just back: w1 may be about to beat too
    clock.advance(2)
    assert second.heartbeat([]) == 0
    first.heartbeat([work.leased.owner])  # w1 is back within two heartbeat periods
    clock.advance(2)
    assert second.heartbeat([]) == 0 and second.lease(10) == []


def test_embedded_start_reclaims_every_lease(factory: sessionmaker[Session]) -> None:
    clock = fresh_clock()
    dead, fresh = make(factory, clock, owner="before"), make(factory, clock, owner="after")
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    assert len(dead.lease(10)) == 2  # the process dies holding both
    assert fresh.reclaim_all() == 2
    assert fresh.run_until_idle() == 2  # at once, not 30 s later
    assert operation_state(factory, op) == "succeeded"


def test_recording_retries_while_the_database_is_down_then_gives_up_at_the_deadline(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    calls: list[float] = []

    def down(_work: Any, _outcome: Any) -> bool:
        calls.append(clock.monotonic())
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    submit(factory, "test.fake", add_sites(factory, "a"))
    [work] = engine.lease(10)
    outcome = Outcome("succeeded")
    monkeypatch.setattr(engine, "record", down)
    assert engine.record_until(work, outcome, deadline=clock.monotonic() + 20) is False
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]  # doubling, capped at 5 s, never past the deadline
    assert len(calls) == 7
    outcomes = iter([OperationalError("INSERT", {}, Exception("down")), True])

    def flaky(_work: Any, _outcome: Any) -> bool:
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(engine, "record", flaky)
    assert engine.record_until(work, outcome, deadline=clock.monotonic() + 20) is True


def test_a_failing_continuation_never_blocks_the_outcome_and_is_recovered(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = fresh_clock()
    engine = make(factory, clock)
    runs: list[str] = []

    def next_stage(session: Session, operation: Any, final: str, now: Any) -> bool:
        runs.append(final)
        if len(runs) == 1:
            raise RuntimeError("a bug in the next stage")
        operations.submit(session, kind="test.fake", targets=[operations.SiteRef(t.site_id, t.site_name)
                                                             for t in tasks_of(factory, operation.id)],
                          payload={}, user_id=None, project_id=None, now=now)
        return True

    monkeypatch.setitem(stages.REGISTRY, "test.next", next_stage)
    with transaction(factory) as session:
        op = operations.submit(session, kind="test.fake", targets=add_sites(factory, "a"), payload={},
                               user_id=None, project_id=None, now=utcnow(), continuation="test.next").id
    woken: list[bool] = []
    engine.on_new_work = lambda: woken.append(True)
    assert engine.run_until_idle() == 1  # the task is recorded although its continuation raised
    assert operation_state(factory, op) == "succeeded" and runs == ["succeeded"] and not woken
    assert engine.recover_stages() == 1  # the recovery scan runs it again
    assert runs == ["succeeded", "succeeded"] and woken == [True]
    assert engine.recover_stages() == 0  # once
    assert engine.run_until_idle() == 1  # the next stage's task
