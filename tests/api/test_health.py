"""Health audit: transitions, thresholds, events, unmanaged sites skipped, secrets never shown."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from skyfleet import logs
from skyfleet.api.runtime import Runtime
from tests.support import FakeProber, site_body

URL = "http://edge.example.test:5000/v3"


def availability(client: TestClient, name: str) -> str:
    value: str = client.get(f"/v1/sites/{name}").json()["availability"]
    return value


def test_offline_after_two_misses_and_back_on_first_success(client: TestClient, runtime: Runtime,
                                                            prober: FakeProber) -> None:
    client.post("/v1/sites", json=site_body("edge", url=URL))
    assert availability(client, "edge") == "online"
    prober.down.add(URL)
    runtime.audit_now()
    site = client.get("/v1/sites/edge").json()
    assert site["availability"] == "online"  # one miss is not enough
    assert site["consecutive_failures"] == 1 and "ConnectFailure" in site["last_error"]
    runtime.audit_now()
    assert availability(client, "edge") == "offline"
    runtime.audit_now()
    assert availability(client, "edge") == "offline"
    prober.down.clear()
    runtime.audit_now()
    site = client.get("/v1/sites/edge").json()
    assert site["availability"] == "online" and site["consecutive_failures"] == 0
    assert site["last_error"] is None and site["last_seen_at"] is not None
    transitions = [(e["details"]["from"], e["details"]["to"])
                   for e in client.get("/v1/events?kind=site.availability&site=edge").json()["events"]]
    assert transitions == [("offline", "online"), ("online", "offline"), ("unknown", "online")]


def test_degraded_when_a_service_fails(client: TestClient, runtime: Runtime, prober: FakeProber) -> None:
    client.post("/v1/sites", json=site_body("edge", url=URL))
    prober.degraded.add(URL)
    runtime.audit_now()
    site = client.get("/v1/sites/edge").json()
    assert site["availability"] == "degraded"
    event = client.get("/v1/events?kind=site.availability").json()["events"][0]
    assert event["details"]["failed_services"] == ["compute"] and event["severity"] == "warning"


def test_offline_threshold_is_configurable(runtime_factory, prober: FakeProber, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from skyfleet.api.app import create_app

    rt = runtime_factory(db_url, prober, offline_after_misses=1)
    with TestClient(create_app(rt, start_workers=False)) as c:
        c.post("/v1/sites", json=site_body("edge", url=URL))
        prober.down.add(URL)
        rt.audit_now()
        assert availability(c, "edge") == "offline"


def test_unmanaged_sites_get_no_work(client: TestClient, runtime: Runtime, prober: FakeProber) -> None:
    client.post("/v1/sites", json=site_body("edge", url=URL))
    client.post("/v1/sites/edge/unmanage")
    prober.calls.clear()
    runtime.audit_now()
    assert prober.calls == []


def test_events_filters_and_pagination(client: TestClient, runtime: Runtime) -> None:
    for i in range(5):
        client.post("/v1/sites", json=site_body(f"s{i}"))
    all_events = client.get("/v1/events?kind=site.created").json()["events"]
    assert len(all_events) == 5
    page = client.get("/v1/events?kind=site.created&limit=2").json()
    assert len(page["events"]) == 2
    rest = client.get(f"/v1/events?kind=site.created&marker={page['next_marker']}").json()["events"]
    assert [e["id"] for e in page["events"] + rest] == [e["id"] for e in all_events]
    newest = all_events[0]["created_at"]
    assert client.get("/v1/events", params={"since": newest}).json()["events"][-1]["created_at"] >= newest
    assert client.get("/v1/events", params={"until": "2000-01-01T00:00:00Z"}).json()["events"] == []
    assert client.get("/v1/events?since=2026-01-01T00:00:00").status_code == 400  # no zone
    assert client.get("/v1/events?since=yesterday").status_code == 422
    assert client.get("/v1/events?site=ghost").status_code == 404


def test_secrets_never_in_responses_or_logs(client: TestClient, runtime: Runtime, prober: FakeProber,
                                            caplog: pytest.LogCaptureFixture) -> None:
    secret = "Zq9-site-password-never-shown"
    logs.install_redaction()
    caplog.handler.addFilter(logs.RedactingFilter())
    with caplog.at_level(logging.DEBUG):
        texts = [client.post("/v1/sites", json=site_body("edge", url=URL, password=secret)).text]
        prober.down.add(URL)
        runtime.audit_now()
        runtime.audit_now()
        texts.append(client.get("/v1/sites").text)
        texts.append(client.get("/v1/sites/edge").text)
        texts.append(client.patch("/v1/sites/edge", json={"auth": site_body("edge", url=URL,
                                                                              password=secret)["auth"]}).text)
        texts.append(client.get("/v1/events").text)
        texts.append(client.get("/openapi.json").text)
        logging.getLogger("skyfleet.test").warning("site auth was %s", {"password": secret})
    assert caplog.records
    for text in texts:
        assert secret not in text
    assert secret not in caplog.text
    with runtime.engine.connect() as connection:
        raw = str(list(connection.exec_driver_sql("SELECT auth_public, auth_encrypted FROM sites")))
    assert secret not in raw  # encrypted at rest
