"""Tables of the reconcile engine: an operation (what a user asked) and its per-site tasks.

A task row is the durable unit of work: its state, attempts, next attempt, lease and outcome are
all here, so any worker in any process can take it over and a restart resumes where it stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, new_id, utcnow

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "pending", "running", "succeeded", "failed", "cancelled"
TASK_STATES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
OPEN_STATES = (PENDING, RUNNING)
OPERATION_STATES = (RUNNING, SUCCEEDED, FAILED, CANCELLED)


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_project_created", "project_id", "created_at"),
                      Index("ix_operations_continuation", "continuation", "continued_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(16), default=RUNNING, nullable=False, index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    total: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The next stage: a registered continuation (``stages``) started in the transaction that settles the
    # last task, or by the recovery scan; ``continued_at`` says it was started.
    continuation: Mapped[str | None] = mapped_column(String(64))
    continued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_due", "state", "next_attempt_at"),
        Index("ix_tasks_lease", "state", "lease_expires_at"),
        Index("ix_tasks_site_state", "site_id", "state"),
        Index("ix_tasks_operation_state", "operation_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    operation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("operations.id", ondelete="CASCADE"), nullable=False
    )
    # No foreign key: a task outlives a deleted site (it then fails with a clear reason).
    site_id: Mapped[str] = mapped_column(String(36), nullable=False)
    site_name: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    state: Mapped[str] = mapped_column(String(16), default=PENDING, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(160))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What an attempt was about to do to the site (e.g. create), written before it did it, so that the
    # attempt that follows a crash knows what it finds there is Skyfleet's own work.
    intent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Worker(Base):
    """A live engine process: its heartbeat keeps the leases it holds; once it stops beating for the
    worker TTL, any other process releases those leases (well before they would expire)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
