"""Record events and query them; keyword-only functions over an explicit session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.events.models import Event
from skyfleet.domains.pagination import find_marker, int_marker


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


def _filtered(query: Select[Any], filters: EventFilter) -> Select[Any]:
    """``query`` narrowed by ``filters``: the one place both the list and the live stream filter rows."""
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
    return query


def list_events(
    session: Session, *, filters: EventFilter, limit: int, marker: str | int | None
) -> tuple[list[Event], int | None]:
    """Newest first; ``marker`` is the id of the last event of the previous page (one the filters' project sees)."""
    last = int_marker(marker)
    if last is not None:
        visible = select(Event.id).where(Event.id == last)
        if filters.project_id:
            visible = visible.where(Event.project_id == filters.project_id)
        find_marker(session, visible, last, "event")
    query = _filtered(select(Event), filters)
    if last is not None:
        query = query.where(Event.id < last)
    rows = list(session.scalars(query.order_by(Event.id.desc()).limit(limit + 1)))
    next_marker = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_marker


def events_after(session: Session, *, filters: EventFilter, after: int, limit: int) -> list[Event]:
    """Oldest first, the events with an id above ``after`` that ``filters`` select (a live stream's poll:
    one indexed range read on the primary key)."""
    query = _filtered(select(Event), filters).where(Event.id > after)
    return list(session.scalars(query.order_by(Event.id).limit(limit)))


def latest_id(session: Session) -> int:
    """The id of the newest event (0 when there is none): where a stream without Last-Event-ID starts."""
    return int(session.scalar(select(func.max(Event.id))) or 0)
