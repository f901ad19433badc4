"""Write and read operations: submit (intent + per-site tasks in the caller's transaction), list, show,
cancel and retry. Keyword-only functions over an explicit session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from skyfleet.db.base import new_id, table_of
from skyfleet.domains.events import service as events
from skyfleet.domains.operations import stages
from skyfleet.domains.operations.models import (
    CANCELLED,
    FAILED,
    OPEN_STATES,
    PENDING,
    RUNNING,
    SUCCEEDED,
    Operation,
    Task,
)
from skyfleet.domains.operations.schemas import OperationDetail, OperationOut, TaskCounts, TaskOut
from skyfleet.domains.pagination import find_marker, text_marker
from skyfleet.errors import Conflict, NotFound


@dataclass(frozen=True)
class SiteRef:
    id: str
    name: str


def submit(
    session: Session, *, kind: str, targets: Sequence[SiteRef], payload: dict[str, Any],
    user_id: str | None, project_id: str | None, now: datetime, continuation: str | None = None,
) -> Operation:
    """Record an operation and one pending task per target site (flushed, not committed).

    ``continuation``: the registered next stage (see ``stages``), started when the tasks settle.
    """
    return submit_each(session, kind=kind, payloads=[(site, payload) for site in targets], summary=payload,
                       user_id=user_id, project_id=project_id, now=now, continuation=continuation)


def submit_each(
    session: Session, *, kind: str, payloads: Sequence[tuple[SiteRef, dict[str, Any]]], summary: dict[str, Any],
    user_id: str | None, project_id: str | None, now: datetime, continuation: str | None = None,
) -> Operation:
    """``submit`` where every task carries its own payload; ``summary`` is the operation's."""
    return submit_tasks(session, kind=kind, payloads=payloads, summary=summary, user_id=user_id,
                        project_id=project_id, now=now, continuation=continuation)[0]


def submit_tasks(
    session: Session, *, kind: str, payloads: Sequence[tuple[SiteRef, dict[str, Any]]], summary: dict[str, Any],
    user_id: str | None, project_id: str | None, now: datetime, continuation: str | None = None,
) -> tuple[Operation, dict[str, str]]:
    """``submit_each``, and the id of each site's task (ids are made here, so nobody reads them back).

    The tasks are one executemany of the table's insert, not ORM objects: a 1,000-site operation is
    a few milliseconds of Python, so the caller's transaction (and, on SQLite, the write lock) is short.
    """
    operation = Operation(kind=kind, state=RUNNING if payloads else SUCCEEDED, user_id=user_id,
                          project_id=project_id, payload=summary, total=len(payloads), created_at=now,
                          updated_at=now, finished_at=None if payloads else now, continuation=continuation)
    session.add(operation)
    session.flush()
    task_of: dict[str, str] = {}
    rows = []
    for site, payload in payloads:
        task_of[site.id] = task_id = new_id()
        rows.append({"id": task_id, "operation_id": operation.id, "site_id": site.id, "site_name": site.name,
                     "kind": kind, "payload": payload, "state": PENDING, "attempts": 0, "next_attempt_at": now,
                     "created_at": now, "updated_at": now})
    if rows:
        session.execute(insert(table_of(Task)), rows)
    elif continuation is not None:
        stages.settled(session, operation=operation, final=SUCCEEDED, now=now)
    return operation, task_of


def get_operation(session: Session, operation_id: str, *, project_id: str | None, admin: bool,
                  for_update: bool = False) -> Operation:
    """An operation the caller may see (admins: any; tenants: their project's)."""
    query = select(Operation).where(Operation.id == operation_id)
    if for_update:
        query = query.with_for_update()
    operation = session.scalars(query).first()
    if operation is None or (not admin and (project_id is None or operation.project_id != project_id)):
        raise NotFound(f"no operation {operation_id!r}")
    return operation


@dataclass(frozen=True)
class OperationFilter:
    kinds: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    project_id: str | None = None  # None: every project (admins)


def list_operations(
    session: Session, *, filters: OperationFilter, limit: int, marker: str | None
) -> tuple[list[Operation], str | None]:
    """Newest first; ``marker`` is the id of the last operation of the previous page."""
    query = select(Operation)
    if filters.kinds:
        query = query.where(Operation.kind.in_(filters.kinds))
    if filters.states:
        query = query.where(Operation.state.in_(filters.states))
    if filters.project_id is not None:
        query = query.where(Operation.project_id == filters.project_id)
    ref = text_marker(marker)
    if ref:
        visible = select(Operation).where(Operation.id == ref)
        if filters.project_id is not None:
            visible = visible.where(Operation.project_id == filters.project_id)
        last: Operation = find_marker(session, visible, ref, "operation")
        query = query.where(or_(Operation.created_at < last.created_at,
                                and_(Operation.created_at == last.created_at, Operation.id < last.id)))
    rows = list(session.scalars(query.order_by(Operation.created_at.desc(), Operation.id.desc())
                                .limit(limit + 1)))
    next_marker = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_marker


def task_counts(session: Session, operation_ids: Sequence[str]) -> dict[str, TaskCounts]:
    counts: dict[str, dict[str, int]] = {op_id: {} for op_id in operation_ids}
    if operation_ids:
        for op_id, state, n in session.execute(
            select(Task.operation_id, Task.state, func.count()).where(Task.operation_id.in_(operation_ids))
            .group_by(Task.operation_id, Task.state)
        ):
            counts[op_id][state] = n
    return {op_id: TaskCounts(**by_state) for op_id, by_state in counts.items()}


def list_tasks(session: Session, operation_id: str) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.operation_id == operation_id).order_by(Task.site_name)))


def cancel(session: Session, *, operation: Operation, now: datetime) -> int:
    """Cancel every open task (a running one's late result is then discarded); returns how many."""
    result = session.execute(
        update(Task).where(Task.operation_id == operation.id, Task.state.in_(OPEN_STATES))
        .values(state=CANCELLED, lease_owner=None, lease_expires_at=None, updated_at=now, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0))
    finish_if_done(session, operation=operation, now=now)
    return count


def retry(session: Session, *, operation: Operation, now: datetime) -> int:
    """Make the failed tasks of ``operation`` pending again, with fresh attempts; returns how many."""
    result = session.execute(
        update(Task).where(Task.operation_id == operation.id, Task.state == FAILED)
        .values(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now, finished_at=None)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0))
    if count == 0:
        raise Conflict(f"operation {operation.id} has no failed task to retry")
    operation.state, operation.finished_at, operation.updated_at = RUNNING, None, now
    operation.continued_at = None  # the next stage is decided again when the retried tasks settle
    return count


def finish_if_done(session: Session, *, operation: Operation, now: datetime) -> str | None:
    """Close ``operation`` when none of its tasks is open (caller holds its row lock) and start its next
    stage, if it has one, in the same transaction; the final state."""
    # One open task is enough to know (an index probe): counting every task of a 1,000-site operation
    # on each task's outcome made recording a fan-out quadratic.
    if session.execute(select(Task.id).where(Task.operation_id == operation.id, Task.state.in_(OPEN_STATES))
                       .limit(1)).first() is not None:
        operation.updated_at = now
        return None
    by_state: dict[str, int] = {state: int(n) for state, n in session.execute(
        select(Task.state, func.count()).where(Task.operation_id == operation.id).group_by(Task.state)
    ).all()}
    if any(by_state.get(state) for state in OPEN_STATES):  # pragma: no cover - a task opened meanwhile
        operation.updated_at = now
        return None
    final = FAILED if by_state.get(FAILED) else CANCELLED if by_state.get(CANCELLED) else SUCCEEDED
    if operation.state == final and operation.finished_at is not None:
        return final
    operation.state, operation.finished_at, operation.updated_at = final, now, now
    events.record(
        session, kind="operation.finished", severity="info" if final == SUCCEEDED else "warning",
        project_id=operation.project_id, at=now,
        message=f"operation {operation.kind} {operation.id} {final}: "
        + ", ".join(f"{n} {state}" for state, n in sorted(by_state.items())),
        details={"operation_id": operation.id, "kind": operation.kind, "counts": by_state},
    )
    stages.settled(session, operation=operation, final=final, now=now)
    return final


def to_out(operation: Operation, counts: TaskCounts) -> OperationOut:
    return OperationOut(
        id=operation.id, kind=operation.kind, state=operation.state, user_id=operation.user_id,
        project_id=operation.project_id, payload=_shown(operation.payload), total=operation.total, counts=counts,
        created_at=operation.created_at, updated_at=operation.updated_at, finished_at=operation.finished_at,
    )


def _shown(payload: dict[str, Any] | None) -> dict[str, Any]:
    """An operation's payload without sealed secrets (``*_box``: a user's encrypted password)."""
    return {k: ("<sealed>" if k.endswith("_box") and v else v) for k, v in (payload or {}).items()}


def to_detail(operation: Operation, counts: TaskCounts, tasks: Sequence[Task]) -> OperationDetail:
    return OperationDetail(**to_out(operation, counts).model_dump(),
                           tasks=[TaskOut.model_validate(t) for t in tasks])
