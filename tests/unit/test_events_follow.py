"""``skyfleet events --follow`` resumes after a dropped connection with Last-Event-ID: each event is
printed once, none is skipped, and only errors a retry cannot fix end it. HTTP is mocked at the
transport (the server side of the stream is tested in tests/api/test_event_stream.py, the two
together in tests/functional/test_events_follow_cli.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from skyfleet.cli.client import ApiClient, ApiFailure
from skyfleet.cli.follow import follow, sse_events


def frame(event_id: int) -> bytes:
    return f"id: {event_id}\ndata: {json.dumps({'id': event_id, 'message': f'e{event_id}'})}\n\n".encode()


class Dropping(httpx.SyncByteStream):
    """A body that sends some frames, then loses the connection."""

    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield b"retry: 2000\n: skyfleet event stream\n\n"
        yield from self.chunks
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


class Enough(Exception):
    pass


def client_with(handler: Any, token: str = "tok") -> ApiClient:
    client = ApiClient("http://skyfleet.test", token)
    client._http = httpx.Client(base_url=client.url, headers={"X-Auth-Token": token},
                                transport=httpx.MockTransport(handler))
    return client


def test_a_dropped_stream_resumes_after_the_last_printed_event() -> None:
    seen: list[dict[str, str | None]] = []
    answers = [
        lambda: httpx.Response(200, json={"events": [{"id": 4}], "next_marker": None}),  # newest, before following
        lambda: httpx.Response(200, stream=Dropping([frame(5), frame(6), b"id: 7\ndata: {\"id\": 7"], drop=True)),
        lambda: httpx.Response(503, json={"code": 503, "title": "Service Unavailable", "detail": "db"}),
        lambda: httpx.Response(200, stream=Dropping([frame(7), frame(8)], drop=False)),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, "last": request.headers.get("Last-Event-ID"),
                     "kind": request.url.params.get("kind")})
        if not answers:
            raise Enough  # stands for the user's Ctrl-C: following never ends by itself
        return answers.pop(0)()

    printed: list[int] = []
    notices: list[str] = []
    sleeps: list[float] = []
    with pytest.raises(Enough):
        follow(client_with(handler), {"kind": "site.availability", "since": None},
               on_event=lambda e: printed.append(e["id"]), notice=notices.append, sleep=sleeps.append)
    assert printed == [5, 6, 7, 8]  # 7 was cut mid-frame the first time: printed once, when complete
    assert [s["last"] for s in seen] == [None, "4", "6", "6", "8"]
    assert seen[0]["path"] == "/v1/events" and all(s["path"] == "/v1/events/stream" for s in seen[1:])
    assert all(s["kind"] == "site.availability" for s in seen)
    assert "lost" in notices[0] and "after event 6" in notices[0] and "503" in notices[1]
    assert sleeps == [1.0, 2.0]  # backoff doubles while failing; a stream the server ends is resumed at once


def test_an_error_a_retry_cannot_fix_ends_following() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            return httpx.Response(200, json={"events": [], "next_marker": None})
        return httpx.Response(403, json={"code": 403, "title": "Forbidden", "detail": "reserved"})

    with pytest.raises(ApiFailure, match="403 Forbidden: reserved"):
        follow(client_with(handler), {}, on_event=lambda e: None, notice=lambda t: None)


def test_sse_parsing_skips_comments_and_joins_data_lines() -> None:
    lines = iter([": hello", "retry: 5", "id: 1", 'data: {"id": 1,', 'data: "x": 2}', "", ": keepalive", ""])
    assert list(sse_events(lines)) == [{"id": 1, "x": 2}]


def test_an_expired_token_is_renewed_once_then_following_goes_on() -> None:
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["X-Auth-Token"]
        tokens.append(token)
        if request.url.path == "/v1/events":
            return httpx.Response(200, json={"events": [], "next_marker": None})
        if token == "expired":
            return httpx.Response(401, json={"code": 401, "title": "Unauthorized", "detail": "token expired"})
        if len(tokens) > 3:
            raise Enough
        return httpx.Response(200, stream=Dropping([frame(1)], drop=False))

    printed: list[int] = []
    with pytest.raises(Enough):
        follow(client_with(handler, "expired"), {}, on_event=lambda e: printed.append(e["id"]), notice=lambda t: None,
               renew=lambda: client_with(handler, "fresh"))
    assert tokens[:3] == ["expired", "expired", "fresh"] and printed == [1]
    with pytest.raises(ApiFailure, match="401"):  # no way to renew: the reason, at once
        follow(client_with(handler, "expired"), {}, on_event=lambda e: None, notice=lambda t: None)
