"""One log line per HTTP request (logger ``skyfleet.access``), a request id on every response, and
the request counted in the HTTP histogram of ``/metrics`` under its route template (never the raw path).

Operators need who did what and how it ended; the line carries method, path, the names of the query
parameters (never their values: a marker or filter may be sensitive, and no header value is ever
logged), status, principal user and project, duration and request id. The request id is taken from a
well-formed ``X-Request-Id`` / ``X-OpenStack-Request-Id`` (``req-<uuid>`` or a uuid) or made, kept in
``scope["state"]["request_id"]`` and in the log context (so every log line of the request and every
error body carry it), and echoed in both response headers.
A pure ASGI middleware: it sees every request, including those refused before any route.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skyfleet import log_context, telemetry

log = logging.getLogger("skyfleet.access")
_REQUEST_ID = re.compile(r"(req-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INCOMING = (b"x-request-id", b"x-openstack-request-id")
_OUTGOING = (b"x-request-id", b"x-openstack-request-id")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id when well formed (as ``req-<uuid>``), else a new one."""
    for name, value in headers:
        if name.lower() in _INCOMING:
            text = value.decode("latin-1").strip().lower()
            if _REQUEST_ID.fullmatch(text):
                return text if text.startswith("req-") else f"req-{text}"
    return f"req-{uuid.uuid4()}"


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(ch if ch.isprintable() and ch != " " else "?" for ch in text)
    return cleaned[:limit]


def query_keys(query_string: bytes) -> str:
    """The parameter names of a query string, sorted and unique (values dropped)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return ",".join(sorted({_printable(key, 64) for key, _ in pairs}))


def principal_ids(scope: Scope) -> tuple[str, str]:
    """(user id, project id) the access decision left in the request state, ``-`` when unknown."""
    state: Any = scope.get("state") or {}
    principal = state.get("principal") if isinstance(state, dict) else None
    user = state.get("principal_user_id") if isinstance(state, dict) else None
    project = state.get("principal_project_id") if isinstance(state, dict) else None
    user = user or getattr(principal, "user_id", None)
    project = project or getattr(principal, "project_id", None)
    return _printable(str(user or "-"), 64), _printable(str(project or "-"), 64)


class AccessLog:
    """Logs each HTTP request once it is answered; adds the request id headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        request_id = request_id_of(scope.get("headers", []))
        state = scope.setdefault("state", {})
        if isinstance(state, dict):
            state["request_id"] = request_id
        status = 500  # what the server answers when the app fails before starting a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OUTGOING]
                headers += [(name, request_id.encode()) for name in _OUTGOING]
                message = {**message, "headers": headers}
            await send(message)

        # user and project are set by the access decision (deps.bind_log_context), in this same task
        tokens = log_context.bind(request_id=request_id, user_id=None, project_id=None)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status, started, request_id)
            log_context.reset(tokens)

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        user, project = principal_ids(scope)
        keys = query_keys(scope.get("query_string", b""))
        path = _printable(scope.get("path", ""), 512) + (f"?{keys}" if keys else "")
        elapsed = time.monotonic() - started
        route = scope.get("route")  # the matched route, left in the scope by the router
        telemetry.observe_http(str(scope.get("method", "-")), getattr(route, "path_format", None), status, elapsed)
        millis = round(elapsed * 1000, 1)
        log.info("%s %s %d user=%s project=%s %.1fms request_id=%s", scope.get("method", "-"), path, status,
                 user, project, millis, request_id,
                 extra={"request_id": request_id, "http_method": scope.get("method"), "http_path": path,
                        "http_status": status, "user_id": user, "project_id": project, "duration_ms": millis})
