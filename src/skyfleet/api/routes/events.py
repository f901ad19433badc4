"""/v1/events: what happened in the fleet, newest first. Tenants see their own project's events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from skyfleet.domains.events.schemas import EventList, EventOut
from skyfleet.domains.sites import service as sites
from skyfleet.errors import Invalid

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=EventList)
def list_events(
    runtime: RuntimeDep, principal: PrincipalDep,
    site: Annotated[str | None, Query(description="Site id or name")] = None,
    kind: Annotated[str | None, Query(description="Comma-separated kinds, e.g. site.availability")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[int | None, Query(description="Id of the last event of the previous page")] = None,
) -> EventList:
    for value, label in ((since, "since"), (until, "until")):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"{label} must carry a time zone, e.g. 2026-01-01T00:00:00Z")
    kinds = tuple(k.strip() for k in (kind or "").split(",") if k.strip())
    with transaction(runtime.factory) as session:
        site_id = None
        if site is not None:
            # Tenants cannot resolve site names; their events are matched by project below.
            site_id = sites.get_site(session, site).id if principal.is_admin else site
        filters = events.EventFilter(
            site_id=site_id, kinds=kinds, since=since, until=until,
            project_id=None if principal.is_admin else (principal.project_id or "-"),
        )
        rows, next_marker = events.list_events(session, filters=filters, limit=limit, marker=marker)
        return EventList(events=[EventOut.model_validate(r) for r in rows], next_marker=next_marker)
