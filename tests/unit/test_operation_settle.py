"""A task of a large operation settles without the operation's row lock; only the operation's last tasks
take it, to close the operation (and start its next stage) exactly once. A sweep closes an operation
whose last tasks all settled at the same instant."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.events.models import Event
from skyfleet.domains.operations import leases
from skyfleet.domains.operations.models import Operation, Task
from skyfleet.reconcile.engine import Outcome
from tests.engine_support import fresh_clock, operation_state, submit
from tests.unit.test_engine import add_sites, make


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def pg_factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(pg_url)
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


def finished_events(factory: sessionmaker[Session], op: str) -> int:
    with transaction(factory) as session:
        return sum(1 for details in session.scalars(select(Event.details).where(Event.kind == "operation.finished"))
                   if details.get("operation_id") == op)


def test_a_large_operation_closes_exactly_once(factory: sessionmaker[Session],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases, "BUSY_OPERATION", 3)  # 10 tasks: the first 6 settle unlocked
    op = submit(factory, "test.fake", add_sites(factory, *(f"s{i}" for i in range(10))))
    engine = make(factory, fresh_clock(), per_site=1)
    assert engine.run_until_idle(limit=4) == 10
    assert operation_state(factory, op) == "succeeded"
    assert finished_events(factory, op) == 1


def test_a_busy_operations_task_settles_while_its_row_is_locked(pg_factory: sessionmaker[Session],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases, "BUSY_OPERATION", 3)
    op = submit(pg_factory, "test.fake", add_sites(pg_factory, *(f"s{i}" for i in range(6))))
    engine = make(pg_factory, fresh_clock(), per_site=1)
    work = engine.lease(6)
    assert len(work) == 6
    holder = pg_factory()  # another transaction holds the operation's row (as a tail task would)
    holder.scalars(select(Operation).where(Operation.id == op).with_for_update()).first()
    try:
        done = threading.Event()
        first = threading.Thread(target=lambda: (engine.record(work[0], Outcome("succeeded", {})), done.set()))
        first.start()
        assert done.wait(10), "a task of an operation with 6 open tasks waited for the operation's row lock"
        tail = threading.Event()
        others = threading.Thread(target=lambda: ([engine.record(w, Outcome("succeeded", {})) for w in work[1:]],
                                                  tail.set()))
        others.start()
        assert not tail.wait(1.0), "the operation's last tasks settled without its row lock"
    finally:
        holder.rollback()
        holder.close()
    others.join(30)
    assert tail.is_set()
    assert operation_state(pg_factory, op) == "succeeded"
    assert finished_events(pg_factory, op) == 1


def test_the_sweep_closes_an_operation_whose_tasks_all_settled(factory: sessionmaker[Session]) -> None:
    op = submit(factory, "test.fake", add_sites(factory, "a", "b"))
    with transaction(factory) as session:  # as if both last tasks had settled unlocked at the same instant
        session.execute(update(Task).where(Task.operation_id == op).values(state="succeeded"))
    engine = make(factory, fresh_clock())
    assert operation_state(factory, op) == "running"
    engine.recover_stages()
    assert operation_state(factory, op) == "succeeded"
    assert finished_events(factory, op) == 1
    engine.recover_stages()
    assert finished_events(factory, op) == 1
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Operation).where(Operation.state == "running")) == 0


def test_the_heartbeat_renews_around_a_task_row_being_written(pg_factory: sessionmaker[Session]) -> None:
    """A renewal never waits for a task row another transaction holds (an outcome being committed):
    waiting is how the heartbeat and a group commit deadlocked."""
    from datetime import timedelta

    op = submit(pg_factory, "test.fake", add_sites(pg_factory, "a", "b"))
    engine = make(pg_factory, fresh_clock(), per_site=1)
    work = engine.lease(2)
    assert len(work) == 2
    busy, free = work
    writer = pg_factory()  # holds the row of one task, as an outcome not yet committed does
    writer.execute(update(Task).where(Task.id == busy.leased.task_id).values(last_error="writing"))
    try:
        renewed: list[int] = []
        now = engine.clock.now() + timedelta(seconds=5)
        thread = threading.Thread(target=lambda: renewed.append(
            _renew(pg_factory, [busy.leased.owner, free.leased.owner], now)))
        thread.start()
        thread.join(5)
        assert not thread.is_alive(), "the renewal waited for the row being written"
        assert renewed == [1]
    finally:
        writer.rollback()
        writer.close()
    with transaction(pg_factory) as session:
        expiry = session.scalar(select(Task.lease_expires_at).where(Task.id == free.leased.task_id))
    assert expiry is not None and expiry > engine.clock.now() + timedelta(seconds=30)
    assert operation_state(pg_factory, op) == "running"


def _renew(factory: sessionmaker[Session], owners: list[str], now: object) -> int:
    from datetime import datetime

    assert isinstance(now, datetime)
    with transaction(factory) as session:
        return leases.renew(session, owners=owners, now=now, lease_seconds=30)


def test_an_outcome_without_a_result_writes_sql_null(factory: sessionmaker[Session]) -> None:
    # A retried task's result is SQL NULL, as the ORM wrote it, not the JSON document "null": queries
    # that look for tasks without a result (``result IS NULL``) must still find it.
    submit(factory, "test.fake", add_sites(factory, "s0"))
    engine = make(factory, fresh_clock(), per_site=1)
    work = engine.lease(1)[0]
    assert engine.record(work, Outcome("retry", error="site busy", delay=5))
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Task).where(
            Task.id == work.leased.task_id, Task.result.is_(None), Task.last_error == "site busy")) == 1
