"""The engine step by step with a fake clock and a scripted kind: backoff, permanent failures, leases,
fencing, the per-site cap and the offline-site circuit (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import RetryPolicy
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, TaskKind, register
from skyfleet.reconcile.policy import FakeClock
from skyfleet.secrets import SecretBox
from tests.engine_support import operation_state, set_availability, submit, tasks_of
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


def fresh_clock() -> FakeClock:
    """A fake clock just ahead of the real one (submitted tasks are stamped with real time)."""
    return FakeClock(utcnow() + timedelta(seconds=1))


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
