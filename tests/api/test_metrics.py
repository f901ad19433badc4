"""GET /metrics scraped as Prometheus would: series checked by name and value (a site taken down flips
its availability gauge), route templates instead of raw paths, the per-site cap, the queue read from
the database, quota ratios, who may read it, and the multiprocess mode."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from skyfleet import telemetry
from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import Task
from skyfleet.domains.quotas.models import QuotaSiteState
from tests.engine_support import submit
from tests.support import TENANT, FakeProber, site_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names_with(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for n, labels in samples if n == name]


def test_a_site_taken_down_flips_its_availability_gauge_and_back(
        client: TestClient, runtime: Runtime, prober: FakeProber) -> None:
    for name in ("edge-1", "edge-2"):
        assert client.post("/v1/sites", json=site_body(name)).status_code == 201
    samples = scrape(client)
    assert value(samples, "skyfleet_site_availability", site="edge-1", availability="online") == 1
    assert value(samples, "skyfleet_sites", availability="online") == 2
    assert value(samples, "skyfleet_site_latency_seconds", site="edge-1") == pytest.approx(0.002)
    prober.down.add(site_body("edge-2")["auth"]["auth_url"])
    for _ in range(runtime.settings.offline_after_misses):
        runtime.audit_now()
    samples = scrape(client)
    assert value(samples, "skyfleet_site_availability", site="edge-2", availability="offline") == 1
    assert value(samples, "skyfleet_site_availability", site="edge-2", availability="online") is None
    assert (value(samples, "skyfleet_sites", availability="online"),
            value(samples, "skyfleet_sites", availability="offline")) == (1, 1)
    prober.down.clear()
    runtime.audit_now()
    samples = scrape(client)
    assert value(samples, "skyfleet_site_availability", site="edge-2", availability="online") == 1
    assert value(samples, "skyfleet_sites", availability="offline") == 0


def test_http_requests_are_counted_by_route_template_never_by_raw_path(client: TestClient) -> None:
    for ref in ("paris-1", "tokyo-2", "paris-1"):
        assert client.get(f"/v1/sites/{ref}").status_code == 404
    client.get("/no/such/path")
    samples = scrape(client)
    count = value(samples, "skyfleet_http_request_duration_seconds_count", method="GET", route="/v1/sites/{ref}",
                  status="404")
    assert count is not None and count >= 3
    routes = {labels["route"] for labels in names_with(samples, "skyfleet_http_request_duration_seconds_count")}
    assert "<unmatched>" in routes
    assert not any("paris" in r or "tokyo" in r or "/no/such" in r for r in routes)


def test_per_site_series_stop_at_the_cap_and_the_aggregates_stay(runtime_factory: Callable[..., Runtime],
                                                                 prober: FakeProber) -> None:
    runtime = runtime_factory(None, prober, metrics_site_series_max=2)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        for index in range(3):
            assert client.post("/v1/sites", json=site_body(f"s{index}")).status_code == 201
            samples = scrape(client)
            per_site = names_with(samples, "skyfleet_site_availability")
            capped = value(samples, "skyfleet_metrics_series_capped", family="site")
            assert (len(per_site), capped) == ((index + 1, 0) if index < 2 else (0, 1))
            assert value(samples, "skyfleet_sites", availability="online") == index + 1
        assert names_with(samples, "skyfleet_inventory_age_seconds") == []
        assert value(samples, "skyfleet_inventory_never_refreshed_sites") == 3


def test_queue_depth_oldest_due_age_and_tasks_by_kind_come_from_the_database(
        client: TestClient, runtime: Runtime) -> None:
    refs = []
    for name in ("a", "b", "c"):
        site = client.post("/v1/sites", json=site_body(name)).json()
        refs.append(operations.SiteRef(site["id"], site["name"]))
    submit(runtime.factory, "sync.keypair", refs)
    now = utcnow()
    with transaction(runtime.factory) as session:
        tasks = list(session.query(Task).order_by(Task.site_name))
        tasks[0].next_attempt_at = now - timedelta(minutes=20)  # waited 20 minutes for a worker
        tasks[1].next_attempt_at = now - timedelta(minutes=1)
        tasks[2].next_attempt_at = now + timedelta(minutes=5)  # backing off
    samples = scrape(client)
    assert value(samples, "skyfleet_queue_due_tasks") == 2
    assert value(samples, "skyfleet_queue_waiting_tasks") == 1
    assert 20 * 60 <= (value(samples, "skyfleet_queue_oldest_due_age_seconds") or 0) < 21 * 60
    assert value(samples, "skyfleet_tasks", kind="sync.keypair", state="pending") == 3
    assert value(samples, "skyfleet_operations", kind="sync.keypair", state="running") == 1


def test_quota_usage_ratio_per_project(client: TestClient, runtime: Runtime) -> None:
    project = "0b7c1d3e00004000800000000000a11d"
    assert client.put(f"/v1/quotas/{project}", json={"limits": {"cores": 10, "ram": -1}}).status_code == 200
    site = client.post("/v1/sites", json=site_body("q1")).json()
    with transaction(runtime.factory) as session:
        session.add(QuotaSiteState(project_id=project, site_id=site["id"], usage={"cores": 12, "ram": 4096}))
    samples = scrape(client)
    assert value(samples, "skyfleet_quota_usage_ratio", project=project, resource="cores") == pytest.approx(1.2)
    assert value(samples, "skyfleet_quota_usage_ratio", project=project, resource="ram") is None  # unlimited
    assert value(samples, "skyfleet_quota_projects") == 1


def test_quota_ratios_stop_at_their_cap(runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None, metrics_quota_series_max=3)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        assert client.put("/v1/quotas/0b7c1d3e00004000800000000000a11d", json={"limits": {"cores": 10}}
                          ).status_code == 200
        samples = scrape(client)
    assert names_with(samples, "skyfleet_quota_usage_ratio") == []  # cores and the defaults: more than 3
    assert value(samples, "skyfleet_metrics_series_capped", family="project") == 1
    assert value(samples, "skyfleet_quota_projects") == 1


def test_tenants_are_refused_and_admins_read(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    as_user(TENANT)
    refused = client.get("/metrics")
    assert refused.status_code == 403 and "fleet admins" in refused.json()["detail"]
    as_user(Principal(user_id="a", user_name="admin", project_id="admin-p", project_name="admin",
                      roles=("admin",), is_admin=True))
    assert client.get("/metrics").status_code == 200


def test_the_scrape_token_reads_without_keystone_and_a_wrong_one_does_not(
        runtime_factory: Callable[..., Runtime]) -> None:
    token = "prometheus-scrape-0123456789"
    runtime = runtime_factory(None, None, auth_mode="keystone", home_auth_url="http://127.0.0.1:9/v3",
                              home_username="svc", home_password="svc-pass",
                              metrics_token=token)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"}).status_code == 401
        assert client.get("/v1/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 401  # only /metrics
        samples = scrape(client, Authorization=f"Bearer {token}")
        assert value(samples, "skyfleet_sites", availability="online") == 0


def test_a_short_scrape_token_is_refused_at_start(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from skyfleet.config import Settings

    with pytest.raises(ValidationError, match="at least 16"):
        Settings(data_dir=tmp_path, auth_mode="noauth", metrics_token="short")


WORKER_SCRIPT = """
from skyfleet import telemetry
telemetry.observe_task("sync.keypair", "succeeded", 0.2)
"""


def test_multiprocess_mode_sums_the_task_counters_of_every_process(tmp_path: Path) -> None:
    env = {**os.environ, telemetry.MULTIPROC_ENV: str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(Path(telemetry.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER_SCRIPT], env=env, check=True, timeout=60)
    text = subprocess.run([sys.executable, "-c", "from skyfleet import telemetry; "
                           "print(telemetry.exposition().decode())"], env=env, check=True, timeout=60,
                          capture_output=True, text=True).stdout
    assert 'skyfleet_task_runs_total{kind="sync.keypair",outcome="succeeded"} 2.0' in text


def test_a_worker_serves_its_own_metrics_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telemetry.serve(port)
    telemetry.observe_task("test.worker-port", "retry", 0.01)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'skyfleet_task_runs_total{kind="test.worker-port",outcome="retry"}' in text
