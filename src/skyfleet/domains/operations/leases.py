"""Leases: how workers in any number of processes take due tasks without ever running one twice at once.

A worker leases a batch of due tasks in one transaction: candidates are read with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer at a time and ignores the
clause), then claimed with a conditional ``UPDATE ... RETURNING`` that re-checks they are still due,
so two workers can never both win a task on any backend. The lease carries a token
(``lease_owner``) that fences every later write: a worker whose lease expired and was taken over
cannot overwrite the new owner's outcome. Tasks of offline sites are not leased (the site's circuit
is open): they wait without burning attempts and resume when the health audit sees the site again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from skyfleet.domains.operations.models import FAILED, PENDING, RUNNING, SUCCEEDED, Operation, Task
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


def _due(now: datetime) -> Any:
    return or_(and_(Task.state == PENDING, Task.next_attempt_at <= now),
               and_(Task.state == RUNNING, Task.lease_expires_at < now))


def _in_flight(session: Session, site_ids: set[str], now: datetime) -> Counter[str]:
    rows = session.execute(
        select(Task.site_id, func.count()).where(
            Task.site_id.in_(site_ids), Task.state == RUNNING, Task.lease_expires_at >= now)
        .group_by(Task.site_id)
    )
    return Counter({site: int(n) for site, n in rows.all()})


def lease_due(
    session: Session, *, owner: str, now: datetime, limit: int, lease_seconds: float, per_site: int,
    skip_sites: frozenset[str] = frozenset(),
) -> list[Leased]:
    """Lease up to ``limit`` due tasks, at most ``per_site`` in flight per site; ``owner`` is the token."""
    candidates = session.execute(
        select(Task.id, Task.site_id).outerjoin(Site, Site.id == Task.site_id)
        .where(_due(now), or_(Site.availability.is_(None), Site.availability != OFFLINE))
        .order_by(Task.next_attempt_at).limit(limit * 4)
        .with_for_update(skip_locked=True, of=Task)
    ).all()
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
    rows = session.execute(
        update(Task).where(Task.id.in_(chosen), _due(now))
        .values(state=RUNNING, attempts=Task.attempts + 1, lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        .returning(Task.id, Task.operation_id, Task.site_id, Task.site_name, Task.kind, Task.payload,
                   Task.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    return [Leased(task_id=r[0], operation_id=r[1], site_id=r[2], site_name=r[3], kind=r[4],
                   payload=dict(r[5] or {}), attempts=r[6], owner=owner) for r in rows]


def renew(session: Session, *, owners: Sequence[str], now: datetime, lease_seconds: float) -> int:
    """Push back the expiry of every task still held under one of ``owners``; returns how many."""
    if not owners:
        return 0
    result = session.execute(
        update(Task).where(Task.lease_owner.in_(owners), Task.state == RUNNING)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def _finish(session: Session, leased: Leased, now: datetime, **values: Any) -> bool:
    operation = session.scalars(
        select(Operation).where(Operation.id == leased.operation_id).with_for_update()).first()
    if operation is None:
        return False
    result = session.execute(
        update(Task).where(Task.id == leased.task_id, Task.lease_owner == leased.owner, Task.state == RUNNING)
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False  # cancelled, or the lease was lost and taken over: the new owner decides
    if values.get("state") in (SUCCEEDED, FAILED):
        finish_if_done(session, operation=operation, now=now)
    return True


def succeed(session: Session, *, leased: Leased, result: dict[str, Any], now: datetime) -> bool:
    """Record success; False when the lease was no longer ours (the result is then discarded)."""
    return _finish(session, leased, now, state=SUCCEEDED, result=result, last_error=None, finished_at=now)


def fail(session: Session, *, leased: Leased, error: str, now: datetime) -> bool:
    """Record a final failure with the site's message."""
    return _finish(session, leased, now, state=FAILED, last_error=error, finished_at=now)


def retry_later(session: Session, *, leased: Leased, error: str, at: datetime, now: datetime) -> bool:
    """Give the task back for another attempt at ``at`` (a temporary failure)."""
    return _finish(session, leased, now, state=PENDING, last_error=error, next_attempt_at=at)


def release(session: Session, *, leased: Leased, at: datetime, now: datetime) -> bool:
    """Give the task back untried (shutdown, site circuit open): the attempt is not counted."""
    return _finish(session, leased, now, state=PENDING, attempts=Task.attempts - 1, next_attempt_at=at)
