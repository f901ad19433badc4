"""Multi-stage operations: an operation's next stage starts when its tasks settle, by itself.

Why it exists: work such as "read the source site, then copy to the targets" has stages, and the
second must start without anyone reading the first (no reader, no poll). An operation names its
continuation (a function registered here under a stable name); ``finish_if_done`` calls it in the
same transaction that settles the operation's last task, so the next stage's rows are written
atomically with the outcome that makes them due. A continuation runs in a savepoint: if it raises,
the task's outcome is still recorded and ``continued_at`` stays empty. ``recover`` finds settled
operations whose continuation never ran (a failed continuation, a process without the module that
registers it, rows written before this existed) and runs it; every engine process runs it at start
and then now and again, so a restart between two stages still continues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.operations.models import RUNNING, Operation

log = logging.getLogger(__name__)

Continuation = Callable[[Session, Operation, str, datetime], bool]
"""``(session, operation, final_state, now)``: submit the next stage (or record why there is none);
True when it submitted tasks (the workers are then woken)."""

REGISTRY: dict[str, Continuation] = {}
SPAWNED = "skyfleet.stages.spawned"  # session.info flag: a continuation ran (there may be new work)


def register(name: str, continuation: Continuation) -> None:
    if REGISTRY.get(name, continuation) is not continuation:
        raise ValueError(f"continuation {name!r} is already registered")
    REGISTRY[name] = continuation


def settled(session: Session, *, operation: Operation, final: str, now: datetime) -> bool:
    """Start ``operation``'s next stage now that its tasks settled; False when there is none or it failed."""
    if operation.continuation is None or operation.continued_at is not None:
        return False
    continuation = REGISTRY.get(operation.continuation)
    if continuation is None:
        log.warning("operation %s: continuation %r is not loaded in this process; the recovery scan will "
                    "start it", operation.id, operation.continuation)
        return False
    operation.updated_at = now
    session.flush()  # a write first: the savepoint then nests in the open transaction (SQLite too)
    try:
        with session.begin_nested():
            submitted = continuation(session, operation, final, now)
            operation.continued_at = now
    except Exception:
        log.exception("operation %s: continuation %r failed; the recovery scan will retry it", operation.id,
                      operation.continuation)
        return False
    if submitted:
        session.info[SPAWNED] = True
    return True


def spawned(session: Session) -> bool:
    """Whether a continuation ran in this session (new tasks may be due: wake the workers)."""
    return bool(session.info.get(SPAWNED))


def recover(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Start the continuations of settled operations that have none yet; returns how many started."""
    if not REGISTRY:
        return 0
    stuck = list(session.scalars(  # equality on the index's first column: no scan of settled history
        select(Operation).where(Operation.continuation.in_(sorted(REGISTRY)), Operation.continued_at.is_(None),
                                Operation.state != RUNNING)
        .order_by(Operation.created_at).limit(limit).with_for_update(skip_locked=True)))
    started = 0
    for operation in stuck:
        if settled(session, operation=operation, final=operation.state, now=now):
            log.info("operation %s: recovered its next stage (%s)", operation.id, operation.continuation)
            started += 1
    return started
