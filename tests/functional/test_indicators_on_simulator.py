"""Indicators on simulated sites: after a health audit and a full inventory refresh, /v1/indicators
holds each site's hypervisor numbers as the site reports them and a latency and error per service; a
site that goes down shows errors in its API series; samples past the retention are pruned; bad input
is a 422 with its reason, and a tenant gets 403."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.deps import get_principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.sites import service as sites
from skyfleet.reconcile import indicators as sampling
from skyfleet.reconcile.inventory import refresh_fleet
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

SITES = ["site-0001", "site-0002", "site-0003"]
SERVICES = ("identity", "compute", "image", "network", "block-storage", "placement")


@pytest.fixture
def fleet(sim: Simulator, runtime_factory: Callable[..., Runtime]) -> Iterator[tuple[Runtime, TestClient]]:
    # the real probe, no fake; a full probe every audit (each service's answer is what these tests read)
    runtime = runtime_factory(indicator_interval=0, indicator_retention=3600, audit_full_every=1)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield runtime, client


def series(client: TestClient, **params: Any) -> dict[tuple[str, str], list[tuple[str, float]]]:
    response = client.get("/v1/indicators", params=params)
    assert response.status_code == 200, response.text
    return {(s["site"], s["name"]): [tuple(p) for p in s["points"]] for s in response.json()["series"]}


def latest(found: dict[tuple[str, str], list[tuple[str, float]]], site: str, name: str) -> float:
    return found[(site, name)][-1][1]


def hypervisor_totals(sim: Simulator, site: str) -> dict[str, int]:
    """What the site itself says, read with openstacksdk as its admin (microversion 2.1 keeps the numbers)."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site))
    rows = conn.compute.get("/os-hypervisors/detail", microversion="2.1").json()["hypervisors"]
    return {key: sum(int(h[key]) for h in rows) for key in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used",
                                                            "local_gb", "local_gb_used")}


def boot(sim: Simulator, site: str) -> None:
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site))
    image = conn.image.create_image(name="img-ind", data=io.BytesIO(b"boot" * 64), disk_format="qcow2",
                                    container_format="bare", allow_duplicates=True)
    net = conn.network.create_network(name="net-ind")
    conn.network.create_subnet(network_id=net.id, cidr="10.9.0.0/24", ip_version=4)
    server = conn.compute.create_server(name="ind-vm", image_id=image.id, flavor_id="1", networks=[{"uuid": net.id}])
    conn.compute.wait_for_server(server, wait=10, interval=0.05)


def test_audit_and_refresh_make_per_site_series(sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    boot(sim, "site-0001")  # so that "used" differs between sites
    runtime.audit_now()
    refresh_fleet(runtime.factory, box=runtime.box, concurrency=8, timeout=5, full=True)

    found = series(client, name="capacity.*", since="10m")
    for site in SITES:
        told = hypervisor_totals(sim, site)
        assert {key: latest(found, site, f"capacity.{key}") for key in told} == told, site
    assert latest(found, "site-0001", "capacity.vcpus_used") > latest(found, "site-0002", "capacity.vcpus_used")

    api = series(client, name="api.*,audit.*", since="10m")
    for site in SITES:
        for kind in SERVICES:
            assert latest(api, site, f"api.{kind}.error") == 0.0
            assert latest(api, site, f"api.{kind}.latency_ms") > 0
        assert latest(api, site, "audit.duration_ms") >= latest(api, site, "audit.latency_ms") > 0

    stepped = client.get("/v1/indicators", params={"site": "site-0002", "name": "capacity.vcpus", "step": "5m",
                                                   "since": "1h"}).json()
    assert stepped["step"] == 300 and [s["site"] for s in stepped["series"]] == ["site-0002"]
    assert stepped["series"][0]["unit"] == "vCPU" and stepped["points"] == len(stepped["series"][0]["points"])

    names = {n["name"]: n for n in client.get("/v1/indicators/names").json()["names"]}
    assert names["capacity.vcpus"]["sites"] == 3 and names["api.compute.error"]["sites"] == 3
    assert names["capacity.vcpus"]["latest"] is not None


def test_a_site_down_or_one_service_failing_shows_in_its_api_series(
        sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    runtime.audit_now()  # first: every site answers, and its services are known
    sim.set_faults("site-0002", down=True)
    sim.set_faults("site-0003", error_rate=1.0, services=["network"])
    runtime.audit_now()
    found = series(client, name="api.*", since="10m")
    down = {kind: latest(found, "site-0002", f"api.{kind}.error") for kind in SERVICES}
    assert down == dict.fromkeys(SERVICES, 1.0)
    assert latest(found, "site-0003", "api.network.error") == 1.0
    assert latest(found, "site-0003", "api.compute.error") == 0.0
    assert latest(found, "site-0001", "api.network.error") == 0.0
    # averaged over both audits: half of site-0002's probes failed
    stepped = series(client, site="site-0002", name="api.compute.error", since="10m", step="1h")
    assert [v for _, v in stepped[("site-0002", "api.compute.error")]] in ([0.5], [0.0, 1.0])


def test_samples_past_the_retention_are_pruned(fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    runtime.audit_now()
    now = int(utcnow().timestamp())
    with transaction(runtime.factory) as session:
        site_id = sites.get_site(session, "site-0001").id
        indicators.write(session, [indicators.Sample(site_id, "audit.latency_ms", now - 3600 - 60 * i, 1.0)
                                   for i in range(1, 11)])
    assert len(series(client, site="site-0001", name="audit.latency_ms", since="3h")[
        ("site-0001", "audit.latency_ms")]) == 11
    job = sampling.prune_job(runtime.settings, runtime.factory)
    assert (job.name, job.interval) == ("indicator-prune", runtime.settings.indicator_prune_interval)
    assert job.run() == 10
    kept = series(client, site="site-0001", name="audit.latency_ms", since="3h")[("site-0001", "audit.latency_ms")]
    assert len(kept) == 1


def test_sample_interval_bounds_the_rows_per_site(sim: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(indicator_interval=300)
    register_sites(runtime.factory, runtime.box, sim, SITES[:2])
    runtime.audit_now()
    runtime.audit_now()  # within the interval: no new sample
    with TestClient(create_app(runtime, start_workers=False)) as client:
        found = series(client, name="audit.duration_ms", since="10m")
    assert {site: len(points) for (site, _), points in found.items()} == {"site-0001": 1, "site-0002": 1}


@pytest.mark.parametrize(("params", "reason"), [
    ({"step": "abc"}, "step: 'abc' is not a duration"),
    ({"step": "0"}, "step: from 1 second"),
    ({"since": "7d", "step": "60"}, "10080 points per series, at most 2000: give a step of at least 303 s"),
    ({"since": "2026-01-01T00:00:00"}, "since must carry a time zone"),
    ({"until": "yesterday"}, "until: 'yesterday' is neither an ISO 8601 time"),
    ({"since": "1h", "until": "2h"}, "must be before until"),
    ({"since": "999999999d"}, "since: at most 3660 days before now"),
    ({"since": "0001-01-01T00:00:00+14:00"}, "is neither an ISO 8601 time"),
    ({"name": "capacity.cores"}, "unknown indicator 'capacity.cores'"),
    ({"name": "disk.*"}, "no indicator starts with 'disk.'"),
    ({"name": "API.compute"}, "is not an indicator name"),
])
def test_bad_input_is_422_with_its_reason(fleet: tuple[Runtime, TestClient], params: dict[str, str],
                                          reason: str) -> None:
    _, client = fleet
    response = client.get("/v1/indicators", params=params)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]


def test_unknown_site_is_404_and_a_too_large_answer_422(fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    assert client.get("/v1/indicators", params={"site": "nowhere"}).status_code == 404
    now = int(utcnow().timestamp())
    with transaction(runtime.factory) as session:
        site_id = sites.get_site(session, "site-0001").id
        indicators.write(session, [indicators.Sample(site_id, "audit.latency_ms", now - 1 - i % 3000, 1.0)
                                   for i in range(indicators.MAX_POINTS + 1)])
    response = client.get("/v1/indicators", params={"since": "1h"})
    assert response.status_code == 422 and "more than 10000 points" in response.json()["detail"]
    assert client.get("/v1/indicators", params={"since": "1h", "step": "60"}).status_code == 200


def test_a_tenant_gets_403_for_site_series(fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    runtime.audit_now()
    tenant = Principal(user_id="u", user_name="demo", project_id="p1", project_name="demo", roles=("member",))
    client.app.dependency_overrides[get_principal] = lambda: tenant  # type: ignore[attr-defined]
    try:
        for path, params in (("/v1/indicators/names", {}), ("/v1/indicators", {"site": "site-0001"}),
                             ("/v1/indicators", {"name": "api.*"}), ("/v1/indicators", {"project": "p2"}),
                             ("/v1/indicators", {"project": "p1", "name": "capacity.vcpus"})):
            response = client.get(path, params=params)
            assert response.status_code == 403, (path, params, response.text)
        # without a filter: its own project's quota series only (none here), never a site's
        response = client.get("/v1/indicators", params={"since": "1h"})
        assert response.status_code == 200 and response.json()["series"] == [], response.text
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def test_retention_older_than_the_query_is_not_an_error(fleet: tuple[Runtime, TestClient]) -> None:
    _, client = fleet
    since = (utcnow() - timedelta(days=30)).isoformat()
    response = client.get("/v1/indicators", params={"since": since, "step": "1d"})
    assert response.status_code == 200 and response.json()["series"] == []


def test_cli_prints_one_line_per_series_and_the_reasons_of_refusals(
        sim: Simulator, live_server: Callable[..., str], runtime_factory: Callable[..., Runtime]) -> None:
    from tests.functional.test_cli import cli

    runtime = runtime_factory(None, None, indicator_interval=0)
    url = live_server(runtime)
    register_sites(runtime.factory, runtime.box, sim, SITES[:2])
    runtime.audit_now()
    code, out = cli(url, "indicators", "--site", "site-0002", "--name", "api.compute.*", "--since", "15m",
                    "-f", "json")
    assert code == 0, out
    body = json.loads(out)
    assert sorted(s["name"] for s in body["series"]) == ["api.compute.error", "api.compute.latency_ms"]
    assert {s["site"] for s in body["series"]} == {"site-0002"}
    code, out = cli(url, "indicators", "--name", "audit.duration_ms")
    assert code == 0 and "LATEST" in out and "site-00" in out, out  # the table (folded on a narrow terminal)
    assert "TREND" in out and any(block in out for block in "▁▂▃▄▅▆▇█"), out  # each series' sparkline
    code, out = cli(url, "indicators", "--step", "abc")
    assert code == 1 and "422" in out and "not a duration" in out, out
    code, out = cli(url, "indicators", "names", "-f", "json")
    assert code == 0 and {"capacity.vcpus", "api.network.error"} <= {n["name"] for n in json.loads(out)["names"]}


def test_metrics_export_each_sites_latest_indicators_under_the_site_cap(
        sim: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape(c: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = c.get("/metrics")
        assert response.status_code == 200, response.text
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text) for s in family.samples}

    # SQLite and PostgreSQL: the one statement on both; a full probe every audit, as above
    runtime = runtime_factory(db_url, indicator_interval=0, audit_full_every=1)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    client = TestClient(create_app(runtime, start_workers=False))
    runtime.audit_now()
    refresh_fleet(runtime.factory, box=runtime.box, concurrency=8, timeout=5, full=True)
    samples = scrape(client)
    for site in SITES:
        told = hypervisor_totals(sim, site)
        assert samples[("skyfleet_site_vcpus", frozenset({("site", site)}))] == told["vcpus"]
        assert samples[("skyfleet_site_memory_bytes", frozenset({("site", site)}))] == told["memory_mb"] * 1024 ** 2
        assert samples[("skyfleet_site_disk_used_bytes", frozenset({("site", site)}))] == (
            told["local_gb_used"] * 1024 ** 3)
        for kind in SERVICES:
            labels = frozenset({("site", site), ("service", kind)})
            assert samples[("skyfleet_site_api_error", labels)] == 0.0
            assert 0 < samples[("skyfleet_site_api_latency_seconds", labels)] < 5
        assert 0 < samples[("skyfleet_site_audit_duration_seconds", frozenset({("site", site)}))] < 5
    per_site = [key for key in samples if ("site", "site-0001") in key[1]]
    # availability, latency, inventory age + 6 capacity + 2 per service (6) + 1 probe duration
    assert len(per_site) == 22

    sim.set_faults("site-0003", error_rate=1.0, services=["network"])
    runtime.audit_now()
    samples = scrape(client)
    assert samples[("skyfleet_site_api_error", frozenset({("site", "site-0003"), ("service", "network")}))] == 1.0

    # the same database read with a cap of 2 sites: 3 sites are above it, none of their series is exported
    capped = runtime_factory(db_url, metrics_site_series_max=2)
    with TestClient(create_app(capped, start_workers=False)) as small:
        samples = scrape(small)
    assert samples[("skyfleet_metrics_series_capped", frozenset({("family", "site")}))] == 1
    assert [key for key in samples if any(label == "site" for label, _ in key[1])] == []
