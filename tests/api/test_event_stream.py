"""GET /v1/events/stream: the rows of GET /v1/events as they happen, resumable with Last-Event-ID,
scoped to the tenant like the list, bounded in number and length, and idle without a database
connection. Streams end by themselves here (``timeout``, and the test settings' 2 s cap)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from tests.support import TENANT


def record(runtime: Runtime, *, kind: str = "site.created", project_id: str | None = None, message: str = "m"
           ) -> int:
    with transaction(runtime.factory) as session:
        event = events.record(session, kind=kind, message=message, project_id=project_id)
        session.flush()
        return event.id


def parse(body: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(events with their SSE ids, comment lines) of a stream body."""
    found, comments = [], []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                comments.append(line)
            elif ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if "data" in fields:
            event = json.loads(fields["data"])
            assert fields["id"] == str(event["id"])
            found.append(event)
    return found, comments


def stream(client: TestClient, **kwargs: Any) -> tuple[int, list[dict[str, Any]], list[str], str]:
    response = client.get("/v1/events/stream", **kwargs)
    if response.status_code != 200:
        return response.status_code, [], [], response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    found, comments = parse(response.text)
    return 200, found, comments, response.text


def test_last_event_id_resumes_after_that_event_in_order(client: TestClient, runtime: Runtime) -> None:
    ids = [record(runtime, message=f"e{i}") for i in range(4)]
    status, found, _, _ = stream(client, params={"timeout": 0.3}, headers={"Last-Event-ID": str(ids[1])})
    assert status == 200 and [e["id"] for e in found] == ids[2:]
    assert [e["message"] for e in found] == ["e2", "e3"]
    _, by_query, _, _ = stream(client, params={"timeout": 0.3, "last_event_id": str(ids[2])})
    assert [e["id"] for e in by_query] == ids[3:]


def test_without_a_resume_point_only_new_events_come_as_they_are_committed(
        client: TestClient, runtime: Runtime) -> None:
    record(runtime, message="old")
    later: list[int] = []
    timer = threading.Timer(0.4, lambda: later.append(record(runtime, message="new")))
    timer.start()
    started = time.monotonic()
    status, found, _, _ = stream(client, params={"timeout": 1.5})
    timer.join()
    assert status == 200 and [e["message"] for e in found] == ["new"] and found[0]["id"] == later[0]
    assert time.monotonic() - started >= 1.4  # it ended by its timeout, not before (no upper bound: load)


def test_the_filters_and_the_tenant_scope_of_the_list_apply(
        client: TestClient, runtime: Runtime, as_user: Callable[[Principal], None]) -> None:
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    record(runtime, kind="quota.breached", project_id="p1", message="mine")
    record(runtime, kind="quota.breached", project_id="p2", message="another tenant's")
    record(runtime, kind="site.created", project_id="p1", message="mine, other kind")
    as_user(TENANT)
    _, found, _, _ = stream(client, params={"timeout": 0.3, "since": since})
    listed = client.get("/v1/events", params={"since": since}).json()["events"]
    assert sorted(e["message"] for e in found) == sorted(e["message"] for e in listed) == \
        ["mine", "mine, other kind"]
    _, found, _, _ = stream(client, params={"timeout": 0.3, "since": since, "kind": "quota.breached"})
    assert [e["message"] for e in found] == ["mine"]
    _, resumed, _, _ = stream(client, params={"timeout": 0.3}, headers={"Last-Event-ID": "0"})
    assert "another tenant's" not in [e["message"] for e in resumed]


def test_bad_input_is_a_400_with_the_reason(client: TestClient) -> None:
    for bad in ("abc", "-1", "9" * 25, "1.5"):
        status, _, _, text = stream(client, headers={"Last-Event-ID": bad})
        assert status == 400 and "Last-Event-ID" in json.loads(text)["detail"], (bad, text)
    status, _, _, text = stream(client, params={"since": "2026-01-01T00:00:00"})
    assert status == 400 and "time zone" in text
    assert stream(client, params={"timeout": "0"})[0] == 422
    assert stream(client, params={"site": "no-such-site"})[0] == 404


def test_heartbeats_keep_an_idle_stream_alive_without_holding_a_database_connection(
        runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None, events_stream_heartbeat_seconds=0.3, events_stream_poll_seconds=0.2)
    held: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            held.append(runtime.engine.pool.checkedout())  # type: ignore[attr-defined]

    sampler = threading.Thread(target=sample)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        sampler.start()
        status, found, comments, _ = stream(client, params={"timeout": 1.2})
        done.set()
        sampler.join()
    assert status == 200 and found == []
    assert comments.count(": keepalive") >= 2
    assert held and held.count(0) >= 0.8 * len(held), held  # connections only for the instants of the polls


def test_streams_beyond_the_maximum_get_a_429_and_slots_come_back(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None, events_stream_max=1)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        first: list[int] = []
        holder = threading.Thread(target=lambda: first.append(stream(client, params={"timeout": 1.5})[0]))
        holder.start()
        deadline = time.monotonic() + 5
        while getattr(client.app.state, "event_stream_slots", None) is None or \
                client.app.state.event_stream_slots.open == 0:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = client.get("/v1/events/stream", params={"timeout": 0.2})
        holder.join()
        assert refused.status_code == 429 and "events_stream_max" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5" and first == [200]
        assert client.app.state.event_stream_slots.open == 0  # type: ignore[attr-defined]
        assert stream(client, params={"timeout": 0.2})[0] == 200


def test_until_ends_the_stream(client: TestClient) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    started = time.monotonic()
    assert stream(client, params={"until": until, "timeout": 30})[0] == 200
    assert time.monotonic() - started < 1.9  # before the 2 s cap of the test settings
