"""Leases: how workers in any number of processes take due tasks without ever running one twice at once.

A worker leases a batch of due tasks in one transaction: candidates are read with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer at a time and ignores the
clause), then claimed with a conditional ``UPDATE ... RETURNING`` that re-checks they are still due,
so two workers can never both win a task on any backend. The lease carries a token
(``lease_owner``) that fences every later write: a worker whose lease expired and was taken over
cannot overwrite the new owner's outcome. Tasks of offline sites are not leased (the site's circuit
is open): they wait without burning attempts and resume when the health audit sees the site again.

A token is ``<worker id>/<suffix>``. Each worker process keeps a row in ``workers`` alive with a
short heartbeat (which also renews its leases); when the row expires, ``release_dead`` hands that
worker's tasks back at once instead of waiting for their leases to run out. Before a kind changes a
site, ``record_intent`` writes on the task what the attempt is about to do, under the same fence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ClauseElement, Integer, and_, bindparam, delete, func, null, or_, select, update
from sqlalchemy.orm import Session

from skyfleet.db.base import table_of
from skyfleet.domains.operations.models import (
    FAILED,
    OPEN_STATES,
    PENDING,
    RUNNING,
    SUCCEEDED,
    Operation,
    Task,
    Worker,
)
from skyfleet.domains.operations.service import finish_if_done
from skyfleet.domains.sites.models import Site

OFFLINE = "offline"


@dataclass(frozen=True)
class Leased:
    """A task this worker holds until ``expires_at`` (renewable)."""

    task_id: str
    operation_id: str
    site_id: str
    site_name: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    owner: str
    intent: dict[str, Any] | None = None  # what an earlier attempt recorded it was about to do
    # Started by a user (its operation names one); False for the operations periodic jobs start (the
    # sync drift audit, quota rounds), which carry no user. Priority lanes count only the former.
    by_user: bool = True


# Leasing runs these statements for every batch, built once on the tables with bound parameters (no
# ORM statement to build, no ORM row to load): see ``_INTENT`` below.
_TASKS, _OPERATIONS, _SITES = table_of(Task), table_of(Operation), table_of(Site)
_DUE = or_(and_(_TASKS.c.state == PENDING, _TASKS.c.next_attempt_at <= bindparam("b_now")),
           and_(_TASKS.c.state == RUNNING, _TASKS.c.lease_expires_at < bindparam("b_now")))
_IN_FLIGHT = (select(_TASKS.c.site_id, func.count())
              .where(_TASKS.c.site_id.in_(bindparam("b_sites", expanding=True)), _TASKS.c.state == RUNNING,
                     _TASKS.c.lease_expires_at >= bindparam("b_now"))
              .group_by(_TASKS.c.site_id))
_CLAIM = (update(_TASKS).where(_TASKS.c.id.in_(bindparam("b_ids", expanding=True)), _DUE)
          .values(state=RUNNING, attempts=_TASKS.c.attempts + 1, lease_owner=bindparam("b_owner"),
                  lease_expires_at=bindparam("b_expires"), updated_at=bindparam("b_now"))
          .returning(_TASKS.c.id, _TASKS.c.operation_id, _TASKS.c.site_id, _TASKS.c.site_name, _TASKS.c.kind,
                     _TASKS.c.payload, _TASKS.c.attempts, _TASKS.c.intent))
_USERS = select(_OPERATIONS.c.id, _OPERATIONS.c.user_id).where(
    _OPERATIONS.c.id.in_(bindparam("b_ids", expanding=True)))


def _lane(by_user: bool) -> Any:
    started = _OPERATIONS.c.user_id.is_not(None) if by_user else _OPERATIONS.c.user_id.is_(None)
    return (select(_TASKS.c.id, _TASKS.c.site_id).join(_OPERATIONS, _OPERATIONS.c.id == _TASKS.c.operation_id)
            .outerjoin(_SITES, _SITES.c.id == _TASKS.c.site_id)
            .where(_DUE, started, or_(_SITES.c.availability.is_(None), _SITES.c.availability != OFFLINE))
            .order_by(_TASKS.c.next_attempt_at).limit(bindparam("b_limit", type_=Integer))
            .with_for_update(skip_locked=True, of=_TASKS))


_LANES = {True: _lane(True), False: _lane(False)}


def _in_flight(session: Session, site_ids: set[str], now: datetime) -> Counter[str]:
    rows = session.execute(_IN_FLIGHT, {"b_sites": list(site_ids), "b_now": now})
    return Counter({site: int(n) for site, n in rows.all()})


def _due_in_lane(session: Session, now: datetime, limit: int, *, by_user: bool) -> list[Any]:
    """Due tasks on sites not offline, of operations a user started (or of periodic ones), oldest first."""
    return list(session.execute(_LANES[by_user], {"b_now": now, "b_limit": limit}).all())


def lease_due(
    session: Session, *, owner: str, now: datetime, limit: int, lease_seconds: float, per_site: int,
    skip_sites: frozenset[str] = frozenset(),
) -> list[Leased]:
    """Lease up to ``limit`` due tasks, at most ``per_site`` in flight per site; ``owner`` is the token.

    Two lanes: the due tasks of operations a user started come first, oldest first; the periodic
    jobs' tasks (operations with no user: drift audits, quota rounds) fill what is left. A
    10,000-task audit queued earlier never holds a user's change behind it."""
    want = limit * 4
    candidates = _due_in_lane(session, now, want, by_user=True)
    if len(candidates) < want:
        candidates += _due_in_lane(session, now, want - len(candidates), by_user=False)
    if not candidates:
        return []
    busy = _in_flight(session, {site for _, site in candidates}, now)
    chosen: list[str] = []
    for task_id, site_id in candidates:
        if site_id in skip_sites or busy[site_id] >= per_site:
            continue
        busy[site_id] += 1
        chosen.append(task_id)
        if len(chosen) >= limit:
            break
    if not chosen:
        return []
    rows = session.execute(_CLAIM, {"b_ids": chosen, "b_now": now, "b_owner": owner,
                                    "b_expires": now + timedelta(seconds=lease_seconds)}).all()
    users = dict(session.execute(_USERS, {"b_ids": list({r[1] for r in rows})}).all()) if rows else {}
    return [Leased(task_id=r[0], operation_id=r[1], site_id=r[2], site_name=r[3], kind=r[4],
                   payload=dict(r[5] or {}), attempts=r[6], owner=owner, intent=r[7],
                   by_user=users.get(r[1]) is not None) for r in rows]


def renew(session: Session, *, owners: Sequence[str], now: datetime, lease_seconds: float) -> int:
    """Push back the expiry of every task still held under one of ``owners``; returns how many.

    A task whose row another transaction holds right now (its outcome or intent being written) is
    skipped: it is settling, or the next heartbeat renews it. Waiting for it instead made the
    heartbeat and a group commit of outcomes lock the same task rows in opposite orders, and
    PostgreSQL broke the deadlock by failing the heartbeat."""
    if not owners:
        return 0
    ids = list(session.scalars(
        select(Task.id).where(Task.lease_owner.in_(owners), Task.state == RUNNING)
        .with_for_update(skip_locked=True)))
    if not ids:
        return 0
    result = session.execute(
        update(Task).where(Task.id.in_(ids), Task.lease_owner.in_(owners), Task.state == RUNNING)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


# The statements every task runs (its intent, its outcome) are built once, on the table, with bound
# parameters: building an ORM statement, coercing its values and computing its cache key cost more
# CPU per task than the database did. Executed with ``session.execute`` (Core: the session still
# autoflushes first), they fence on the lease exactly as before.
_HELD = (_TASKS.c.id == bindparam("b_task_id"), _TASKS.c.lease_owner == bindparam("b_owner"),
         _TASKS.c.state == RUNNING)
_INTENT = update(_TASKS).where(*_HELD).values(intent=bindparam("b_intent"), updated_at=bindparam("b_now"))
_OPEN_PAST_BUSY = (select(_TASKS.c.id).where(_TASKS.c.operation_id == bindparam("b_operation_id"),
                                             _TASKS.c.state.in_(OPEN_STATES))
                   .offset(bindparam("b_busy", type_=Integer)).limit(1))
_SETTLE: dict[tuple[tuple[str, bool], ...], Any] = {}  # by (column, value is None) of what an outcome sets


def _held(leased: Leased) -> dict[str, Any]:
    return {"b_task_id": leased.task_id, "b_owner": leased.owner}


def _settle_statement(values: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The prepared UPDATE that ends the attempt, setting ``values`` (None: SQL NULL, as the ORM writes
    it), and its parameters; None when a value is an expression (built per call instead)."""
    if any(isinstance(value, ClauseElement) for value in values.values()):
        return None
    shape = tuple(sorted((name, value is None) for name, value in values.items()))
    statement = _SETTLE.get(shape)
    if statement is None:
        statement = _SETTLE[shape] = update(_TASKS).where(*_HELD).values(
            lease_owner=None, lease_expires_at=None, updated_at=bindparam("b_now"),
            **{name: null() if none else bindparam(f"b_{name}") for name, none in shape})
    return statement, {f"b_{name}": value for name, value in values.items() if value is not None}


def record_intent(session: Session, *, leased: Leased, intent: dict[str, Any], now: datetime) -> bool:
    """Write on the task what this attempt is about to do to the site; False when the lease is lost."""
    result = session.execute(_INTENT, {**_held(leased), "b_now": now,
                                       "b_intent": {**intent, "attempt": leased.attempts, "at": now.isoformat()}})
    return getattr(result, "rowcount", 0) == 1


def record_progress(session: Session, *, leased: Leased, progress: dict[str, Any], now: datetime) -> bool:
    """Write how far a running attempt got (``result.progress``, replaced by the outcome when it ends);
    False when the lease is lost."""
    result = session.execute(
        update(Task).where(Task.id == leased.task_id, Task.lease_owner == leased.owner, Task.state == RUNNING)
        .values(result={"progress": {**progress, "at": now.isoformat()}}, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def heartbeat(session: Session, *, worker: str, now: datetime, ttl: float) -> None:
    """Keep ``worker``'s row alive for ``ttl`` seconds more (created on its first beat)."""
    expires = now + timedelta(seconds=ttl)
    result = session.execute(update(Worker).where(Worker.id == worker)
                             .values(heartbeat_at=now, expires_at=expires)
                             .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) == 0:
        session.add(Worker(id=worker, started_at=now, heartbeat_at=now, expires_at=expires))
        session.flush()


def retire(session: Session, *, worker: str) -> None:
    """A worker that stops cleanly removes its row (its leases were recorded or given back)."""
    session.execute(delete(Worker).where(Worker.id == worker).execution_options(synchronize_session=False))


def _expire_leases(session: Session, owners: Any, now: datetime) -> int:
    # next_attempt_at is kept: the task was due when it was leased, so it goes back to the head of the
    # queue (ordered by due time), not behind everything submitted since.
    result = session.execute(
        update(Task).where(Task.state == RUNNING, owners)
        .values(state=PENDING, lease_owner=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def release_dead(session: Session, *, now: datetime, alive: str) -> int:
    """Hand back at once the tasks of workers whose heartbeat stopped (never ``alive``'s own); the
    attempt they were in counts. Returns how many tasks were released."""
    dead = list(session.scalars(select(Worker.id).where(Worker.expires_at < now, Worker.id != alive)
                                .with_for_update(skip_locked=True)))
    released = 0
    for worker in dead:
        released += _expire_leases(session, Task.lease_owner.startswith(f"{worker}/", autoescape=True), now)
        session.execute(delete(Worker).where(Worker.id == worker).execution_options(synchronize_session=False))
    return released


def release_all(session: Session, *, now: datetime) -> int:
    """Hand back every leased task (the embedded server at start: it is the only process, so every
    lease is a dead one's). Returns how many."""
    session.execute(delete(Worker).execution_options(synchronize_session=False))
    return _expire_leases(session, Task.lease_owner.is_not(None), now)


# An operation with more open tasks than this is far from done: a task of it settles without the
# operation's row lock. Only its last tasks take that lock (to close it, and start its next stage,
# exactly once). Before, every outcome of a 1,000-site fan-out queued on the one operation row and
# counted all its tasks: the workers of every process took turns, one outcome at a time.
BUSY_OPERATION = 256


def _finish(session: Session, leased: Leased, now: datetime, **values: Any) -> bool:
    settles = values.get("state") in (SUCCEEDED, FAILED)
    # More than BUSY_OPERATION open tasks: the one past them exists (one row back, not 257 to count).
    busy = settles and session.execute(
        _OPEN_PAST_BUSY, {"b_operation_id": leased.operation_id, "b_busy": BUSY_OPERATION}).first() is not None
    operation = None
    if not busy:  # the lock first, then the task: the order cancelling an operation takes them in
        operation = session.scalars(
            select(Operation).where(Operation.id == leased.operation_id).with_for_update()).first()
        if operation is None:
            return False
    prepared = _settle_statement(values)
    if prepared is not None:
        result = session.execute(prepared[0], {**_held(leased), "b_now": now, **prepared[1]})
    else:
        result = session.execute(
            update(Task).where(Task.id == leased.task_id, Task.lease_owner == leased.owner, Task.state == RUNNING)
            .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
    if getattr(result, "rowcount", 0) != 1:
        return False  # cancelled, or the lease was lost and taken over: the new owner decides
    if settles and operation is not None:
        finish_if_done(session, operation=operation, now=now)
    return True


def close_settled(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Close running operations none of whose tasks is open; returns how many. A safety net for
    :func:`_finish`'s unlocked path: were more than ``BUSY_OPERATION`` of one operation's last tasks
    recorded at the same instant, each could see the others still open and none close it."""
    still_open = select(Task.id).where(Task.operation_id == Operation.id, Task.state.in_(OPEN_STATES)).exists()
    stuck = list(session.scalars(
        select(Operation).where(Operation.state == RUNNING, ~still_open)
        .order_by(Operation.created_at).limit(limit).with_for_update(skip_locked=True)))
    return sum(finish_if_done(session, operation=operation, now=now) is not None for operation in stuck)


def succeed(session: Session, *, leased: Leased, result: dict[str, Any], now: datetime) -> bool:
    """Record success; False when the lease was no longer ours (the result is then discarded)."""
    return _finish(session, leased, now, state=SUCCEEDED, result=result, last_error=None, finished_at=now)


def fail(session: Session, *, leased: Leased, error: str, now: datetime) -> bool:
    """Record a final failure with the site's message."""
    return _finish(session, leased, now, state=FAILED, last_error=error, finished_at=now)


def retry_later(session: Session, *, leased: Leased, error: str, at: datetime, now: datetime,
                result: dict[str, Any] | None = None) -> bool:
    """Give the task back for another attempt at ``at`` (a temporary failure); ``result`` marks it
    (``{"failing": True}``: past its max attempts, retried until the site answers)."""
    return _finish(session, leased, now, state=PENDING, last_error=error, next_attempt_at=at, result=result)


def due_now(session: Session, *, site_ids: Collection[str], now: datetime) -> int:
    """Make the waiting tasks of these sites due at once (they came back online); returns how many. One
    statement for a batch of sites: the health audit's first cycle brings thousands online at once."""
    if not site_ids:
        return 0
    result = session.execute(
        update(Task).where(Task.site_id.in_(list(site_ids)), Task.state == PENDING, Task.next_attempt_at > now)
        .values(next_attempt_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0))


def release(session: Session, *, leased: Leased, at: datetime, now: datetime) -> bool:
    """Give the task back untried (shutdown, site circuit open): the attempt is not counted."""
    return _finish(session, leased, now, state=PENDING, attempts=Task.attempts - 1, next_attempt_at=at)
