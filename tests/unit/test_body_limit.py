"""The body-limit middleware on its own: Content-Length, chunked bodies, bodies within the limit, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from skyfleet.api.body_limit import BodyLimit


class Echo:
    """An application that reads the whole body and answers its length."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _run(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> list[dict[str, Any]]:
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/sites", "headers": headers or []}
    asyncio.run(app(scope, receive, send))
    return sent


def test_content_length_over_the_limit_is_413_without_reading() -> None:
    inner = Echo()
    sent = _run(BodyLimit(inner, max_bytes=10), [b"x" * 11], headers=[(b"content-length", b"11")])
    assert sent[0]["status"] == 413 and inner.messages == []
    body = json.loads(sent[1]["body"])
    assert body["code"] == 413 and body["title"] and "10 bytes" in body["detail"]


def test_a_chunked_body_is_cut_at_the_limit() -> None:
    inner = Echo()
    sent = _run(BodyLimit(inner, max_bytes=10), [b"xxxx", b"xxxx", b"xxxx", b"xxxx"])
    assert sent[0]["status"] == 413 and inner.messages == []
    assert "while streaming" in json.loads(sent[1]["body"])["detail"]


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    inner = Echo()
    sent = _run(BodyLimit(inner, max_bytes=10), [b"abc", b"def", b"ghij"])
    assert sent[0]["status"] == 200 and inner.bodies == [b"abcdefghij"]


def test_a_disconnect_before_the_body_ends_is_passed_on() -> None:
    inner = Echo()

    async def go() -> None:
        messages = [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError("nothing is sent to a client that left")

        await BodyLimit(inner, max_bytes=10)({"type": "http", "headers": []}, receive, send)

    asyncio.run(go())
    assert inner.messages == [{"type": "http.disconnect"}]
