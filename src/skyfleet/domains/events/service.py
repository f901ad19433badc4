"""Record events and query them; keyword-only functions over an explicit session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.events.models import Event


def record(
    session: Session,
    *,
    kind: str,
    message: str,
    severity: str = "info",
    site_id: str | None = None,
    site_name: str | None = None,
    project_id: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    event = Event(
        kind=kind, message=message, severity=severity, site_id=site_id, site_name=site_name,
        project_id=project_id, details=details or {}, created_at=at or utcnow(),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class EventFilter:
    site_id: str | None = None
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    project_id: str | None = None


def list_events(
    session: Session, *, filters: EventFilter, limit: int, marker: int | None
) -> tuple[list[Event], int | None]:
    """Newest first; ``marker`` is the id of the last event of the previous page."""
    query = select(Event)
    if filters.site_id:
        query = query.where(Event.site_id == filters.site_id)
    if filters.kinds:
        query = query.where(Event.kind.in_(filters.kinds))
    if filters.since:
        query = query.where(Event.created_at >= filters.since)
    if filters.until:
        query = query.where(Event.created_at < filters.until)
    if filters.project_id:
        query = query.where(Event.project_id == filters.project_id)
    if marker is not None:
        query = query.where(Event.id < marker)
    rows = list(session.scalars(query.order_by(Event.id.desc()).limit(limit + 1)))
    next_marker = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_marker
