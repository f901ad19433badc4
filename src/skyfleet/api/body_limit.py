"""Refuse request bodies larger than ``max_body_bytes`` with 413 before anything parses them.

Why it exists: FastAPI reads and parses the whole body before validation can say 422, so a 100 MB
body cost 100 MB of memory and a JSON parse. This pure ASGI middleware answers 413 (the project's
error body) as soon as ``Content-Length`` says too much, and counts the bytes of a chunked body as
they arrive, stopping at the limit. A body within the limit is handed to the application unchanged.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skyfleet.api.errors import error_body

OVER = "skyfleet.body_over_limit"  # scope flag: a streamed body passed its limit and was cut


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body per HTTP request. Requests that
    ``streams`` names (method and path pattern) are streamed to the application unbuffered, up to
    their own limit: past it the body ends as if the client left, and ``scope[OVER]`` says why."""

    def __init__(self, app: ASGIApp, *, max_bytes: int,
                 streams: tuple[tuple[str, re.Pattern[str], int], ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((n for method, path, n in self.streams
                      if scope.get("method") == method and path.fullmatch(scope.get("path", ""))), None)
        if limit is not None:
            await self._stream(scope, receive, send, limit)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"the request body has {declared} bytes (Content-Length)")
            return
        # Read the body here (at most max_bytes are kept), then replay it to the application.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, f"the request body passed {self.max_bytes} bytes while streaming")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], None, receive), send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, f"the request body has {declared} bytes (Content-Length)", limit=limit,
                               setting="image_upload_max_bytes")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    scope[OVER] = f"the request body passed {limit} bytes (setting image_upload_max_bytes)"
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send, why: str, *, limit: int | None = None, setting: str = "max_body_bytes") -> None:
        detail = f"{why}; at most {limit or self.max_bytes} bytes are accepted (setting {setting})"
        payload = json.dumps(error_body(413, detail)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` (then ``last``, if any) before reading from ``receive`` again."""
    pending = [*messages, *([last] if last is not None else [])]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
