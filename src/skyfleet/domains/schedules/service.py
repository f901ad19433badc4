"""Claim a periodic job: exactly one process wins each interval, whatever the number of processes.

The claim is one conditional UPDATE (the due time read just before, and ``next_run_at <= now``), which
every backend executes atomically, so two processes can never both win the same interval; a process
that dies after claiming only delays the job to the next interval, it never blocks it.

Runs keep a fixed rate: the next one is due one interval after this one was *due*, not after it was
claimed, so a run claimed a few seconds late (its process was busy) does not push every later run back
(the drift audit promises a repair within about one interval). A run claimed more than an interval
late is not caught up: the next is one interval from now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyfleet.domains.schedules.models import Schedule


def claim(session: Session, *, name: str, interval: float, owner: str, now: datetime) -> bool:
    """True when this caller owns the run of ``name`` due at ``now``; schedules the next one."""
    if session.scalar(select(Schedule.name).where(Schedule.name == name)) is None:
        try:
            with session.begin_nested():
                session.add(Schedule(name=name, next_run_at=now))
        except IntegrityError:
            pass  # another process created it first; the UPDATE below decides
    due = session.scalar(select(Schedule.next_run_at).where(Schedule.name == name))
    if due is None or due > now:
        return False
    step = timedelta(seconds=interval)
    following = due + step if due + step > now else now + step
    result = session.execute(
        update(Schedule)
        .where(Schedule.name == name, Schedule.next_run_at == due)
        .values(next_run_at=following, last_run_at=now, claimed_by=owner)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def run_now(session: Session, *, name: str, now: datetime) -> None:
    """Make ``name`` due at once (e.g. a site joined and must be audited)."""
    session.execute(
        update(Schedule).where(Schedule.name == name).values(next_run_at=now)
        .execution_options(synchronize_session=False)
    )
