"""``skyfleet events --follow``: print events as they happen, surviving dropped connections.

Why it exists: an operator watching a rollout or an outage should not lose events when the network,
a proxy or the server's own stream limit cuts the connection. The client remembers the id of the
last event it printed and reconnects with ``Last-Event-ID`` (backing off from 1 s to 30 s while the
server is unreachable, busy or unavailable), so each event is printed once and none is skipped. When
it starts without ``--since``, it first asks ``GET /v1/events`` for the newest matching event, so
that even events committed between two connections before the first event arrives are not missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from skyfleet.cli.client import ApiClient, ApiFailure

RETRYABLE = {None, 429, 502, 503, 504}  # unreachable, dropped, busy: try again; anything else is final


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The events of a Server-Sent Events body (comments and ``retry:`` skipped)."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield json.loads("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:  # a body cut after its last data line is not a complete message: dropped
        return


def follow(client: ApiClient, params: dict[str, Any], *, on_event: Callable[[dict[str, Any]], None],
           notice: Callable[[str], None], seconds: float | None = None,
           renew: Callable[[], ApiClient] | None = None,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    """Print events until interrupted (or ``seconds``); returns how many were printed. Raises
    :class:`ApiFailure` for answers a retry cannot change (403, 400, 404...). A 401 on reconnecting
    (the token expired while following: the server validates it at each stream) calls ``renew`` for a
    client with a new token, once; without ``renew``, or if the new token is refused too, it ends."""
    deadline = None if seconds is None else clock() + seconds
    last: int | None = None
    if params.get("since") is None:
        newest = client.get("/v1/events", **{**params, "limit": 1})["events"]
        last = newest[0]["id"] if newest else 0
    printed, delay, renewed = 0, 1.0, False
    while deadline is None or clock() < deadline:
        headers = {} if last is None else {"Last-Event-ID": str(last)}
        query = dict(params)
        if deadline is not None:
            query["timeout"] = max(0.1, round(deadline - clock(), 1))
        try:
            with client.stream_lines("/v1/events/stream", query, headers) as lines:
                for event in sse_events(lines):
                    on_event(event)
                    printed += 1
                    last = int(event["id"])
                    delay, renewed = 1.0, False
        except ApiFailure as exc:
            if exc.status == 401 and renew is not None and not renewed:
                notice(f"{exc}; asking Keystone for a new token")
                client, renewed = renew(), True
                continue
            if exc.status not in RETRYABLE:
                raise
            notice(f"{exc}; reconnecting in {delay:g} s" + (f" after event {last}" if last else ""))
            sleep(delay if deadline is None else max(0.0, min(delay, deadline - clock())))
            delay = min(30.0, delay * 2)
    return printed
