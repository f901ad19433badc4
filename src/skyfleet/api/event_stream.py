"""Server-Sent Events for ``GET /v1/events/stream``: framing, resumption, heartbeats and bounds.

Why it exists: a live feed is a response that lasts minutes, which ordinary routes never are. It must
not hold a database connection while nothing happens (each poll is its own short transaction, run in
a worker thread every ``events_stream_poll_seconds``), must not outlive its caller's right to read
(``events_stream_max_seconds``, after which the client reconnects and its token is validated again),
and must not let a crowd of clients exhaust the process (``events_stream_max`` at once, 429 beyond).
What a stream may see is decided before it starts, by the same filters and tenant scope as
``GET /v1/events`` (the route builds one ``EventFilter`` for both).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import anyio
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Receive, Scope, Send

from skyfleet.api.ratelimit import TooManyRequests
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from skyfleet.domains.events.schemas import EventOut
from skyfleet.domains.pagination import MAX_INT_MARKER
from skyfleet.errors import Invalid

log = logging.getLogger(__name__)
BATCH = 500  # events sent per poll at most; a full batch is followed by another poll at once
RETRY_MS = 2000  # what EventSource clients wait before reconnecting


class StreamSlots:
    """How many streams this process serves; thread safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        """Take a slot, or raise 429 naming the limit."""
        with self._lock:
            if self.open >= self.limit:
                raise TooManyRequests(f"this server already serves {self.limit} live event streams "
                                      "(events_stream_max); retry later or poll GET /v1/events", retry_after=5)
            self.open += 1

    def give_back(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


class SlotResponse(StreamingResponse):
    """A streaming response that gives its slot back however it ends (finished, client gone, error),
    even when the body was never started."""

    def __init__(self, content: AsyncIterator[str], slots: StreamSlots) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back()


def resume_point(header: str | None, query: str | None) -> int | None:
    """The id a client last saw (``Last-Event-ID`` header, else ``last_event_id``); 400 when malformed."""
    raw = header if header not in (None, "") else query
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_INT_MARKER:
        raise Invalid(f"Last-Event-ID: must be an event id, an integer from 0 to {MAX_INT_MARKER}, "
                      f"got {text[:40]!r}")
    return int(text)


def frame(event: EventOut) -> str:
    """One SSE message: the event id (for Last-Event-ID) and the event as JSON, as ``GET /v1/events`` shows it."""
    return f"id: {event.id}\ndata: {json.dumps(event.model_dump(mode='json'), separators=(',', ':'))}\n\n"


def poller(factory: sessionmaker[Session], filters: events.EventFilter) -> Callable[[int], list[EventOut]]:
    """A poll: one short transaction, rows turned into answers before it ends (no connection is kept)."""
    def poll(after: int) -> list[EventOut]:
        with transaction(factory) as session:
            rows = events.events_after(session, filters=filters, after=after, limit=BATCH)
            return [EventOut.model_validate(row) for row in rows]
    return poll


async def event_lines(poll: Callable[[int], list[EventOut]], *, after: int, seconds: float, poll_every: float,
                      heartbeat: float, until: datetime | None = None) -> AsyncIterator[str]:
    """The body of a stream: events after ``after`` as they are committed, a comment line after
    ``heartbeat`` seconds of silence, until ``seconds`` have passed (or ``until``, a filter's end)."""
    started = time.monotonic()
    deadline = started + seconds
    quiet_since = started
    yield f"retry: {RETRY_MS}\n: skyfleet event stream\n\n"
    while True:
        try:
            batch = await anyio.to_thread.run_sync(poll, after)
        except SQLAlchemyError as exc:  # the answer has started: end it; the client resumes when it can
            log.warning("event stream ended: database unavailable (%s)", type(exc).__name__)
            yield ": database unavailable; reconnect with Last-Event-ID\n\n"
            return
        for event in batch:
            yield frame(event)
            after = event.id
        now = time.monotonic()
        if now >= deadline or (until is not None and utcnow() >= until):
            return
        if batch:
            quiet_since = now
            if len(batch) == BATCH:
                continue  # a backlog: the next batch at once
        if now - quiet_since >= heartbeat:
            yield ": keepalive\n\n"
            quiet_since = now
        await anyio.sleep(min(poll_every, max(0.0, deadline - now)))
