"""/v1/events: what happened in the fleet, newest first, and /v1/events/stream, the same rows live
(Server-Sent Events). Tenants see their own project's events, in both: one filter builds both queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.event_stream import SlotResponse, StreamSlots, event_lines, poller, resume_point
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from skyfleet.domains.events.schemas import EventList, EventOut
from skyfleet.domains.sites import service as sites
from skyfleet.errors import Invalid

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=CLEAN_URL)
SiteQuery = Annotated[str | None, Query(description="Site id or name")]
KindQuery = Annotated[str | None, Query(description="Comma-separated kinds, e.g. site.availability")]
SinceQuery = Annotated[datetime | None, Query(description="ISO 8601, inclusive")]
UntilQuery = Annotated[datetime | None, Query(description="ISO 8601, exclusive")]


def event_filter(runtime: Runtime, principal: Principal, *, site: str | None, kind: str | None,
                 since: datetime | None, until: datetime | None) -> events.EventFilter:
    """The rows a caller may see with these filters: the list and the stream both ask here."""
    for value, label in ((since, "since"), (until, "until")):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"{label} must carry a time zone, e.g. 2026-01-01T00:00:00Z")
    kinds = csv(kind, "kind")
    site_id = None
    if site is not None:
        # Tenants cannot resolve site names; their events are matched by project below.
        if principal.is_admin:
            with transaction(runtime.factory) as session:
                site_id = sites.get_site(session, site).id
        else:
            site_id = site
    return events.EventFilter(site_id=site_id, kinds=kinds, since=since, until=until,
                              project_id=access.row_scope(principal))


@router.get("", response_model=EventList)
def list_events(
    runtime: RuntimeDep, principal: PrincipalDep, site: SiteQuery = None, kind: KindQuery = None,
    since: SinceQuery = None, until: UntilQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[str | None, Query(description="Id of the last event of the previous page (an integer)")]
    = None,
) -> EventList:
    filters = event_filter(runtime, principal, site=site, kind=kind, since=since, until=until)
    with transaction(runtime.factory) as session:
        rows, next_marker = events.list_events(session, filters=filters, limit=limit, marker=marker)
        return EventList(events=[EventOut.model_validate(r) for r in rows], next_marker=next_marker)


def _slots(request: Request, runtime: Runtime) -> StreamSlots:
    slots: StreamSlots | None = getattr(request.app.state, "event_stream_slots", None)
    if slots is None:
        slots = StreamSlots(runtime.settings.events_stream_max)
        request.app.state.event_stream_slots = slots
    return slots


#: One event of the stream (OpenAPI before 3.2 has ``schema`` describe each event of an event stream):
#: its ``id`` and its ``data``, the event as GET /v1/events shows it, in JSON.
SSE_EVENT: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {
    "id": {"type": "string"}, "event": {"type": "string"}, "retry": {"type": "integer"},
    "data": {"type": "string", "contentMediaType": "application/json"}}}
STREAM_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                    "description": "Server-Sent Events: `id:` the event id, `data:` the event as in GET /v1/events; "
                    "comment lines as heartbeats."}}


@router.get("/stream", response_class=StreamingResponse, responses=STREAM_DOC)
def stream_events(
    request: Request, runtime: RuntimeDep, principal: PrincipalDep, site: SiteQuery = None, kind: KindQuery = None,
    since: SinceQuery = None, until: UntilQuery = None,
    timeout: Annotated[float | None, Query(gt=0, le=86400, description="End the stream after this many seconds "
                                          "(at most events_stream_max_seconds)")] = None,
    last_event_id: Annotated[str | None, Query(description="For clients that cannot send the Last-Event-ID header")]
    = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID", description="Resume after this event id "
                                                    "(EventSource sends it when it reconnects)")] = None,
) -> SlotResponse:
    """Events as they happen, oldest first: after Last-Event-ID when given, else from ``since``, else from now."""
    after = resume_point(last_event_header, last_event_id)
    filters = event_filter(runtime, principal, site=site, kind=kind, since=since, until=until)
    if after is None and since is None:
        with transaction(runtime.factory) as session:
            after = events.latest_id(session)
    s = runtime.settings
    slots = _slots(request, runtime)
    slots.take()
    body = event_lines(poller(runtime.factory, filters), after=after or 0, until=until,
                       seconds=min(timeout or s.events_stream_max_seconds, s.events_stream_max_seconds),
                       poll_every=s.events_stream_poll_seconds, heartbeat=s.events_stream_heartbeat_seconds)
    return SlotResponse(body, slots)
