"""/metrics of a live server with its workers, scraped over HTTP as Prometheus does, while simulated
sites go down and come back and a keypair is synced: the series move as the fleet does, waiting as
an operator waits (no call advances the work)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY
from tests.functional.conftest import site_auth


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(url: str, check: Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]], bool],
             seconds: float) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.25)


def gauge(name: str, **labels: str) -> Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]], float | None]:
    return lambda samples: samples.get((name, frozenset(labels.items())))


def test_site_availability_and_task_series_follow_the_fleet(
        sim: Simulator, live_server: Callable[..., str], runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None, audit_interval=1.0, site_timeout=2.0, offline_after_misses=2)
    url = live_server(runtime, workers=True)
    names = sim.site_names()[:3]
    for name in names:
        assert httpx.post(f"{url}/v1/sites", json={"name": name, "auth": site_auth(sim, name)},
                          timeout=30).status_code == 201
    online = gauge("skyfleet_site_availability", site=names[1], availability="online")
    offline = gauge("skyfleet_site_availability", site=names[1], availability="offline")
    assert online(wait_for(url, lambda s: online(s) == 1, 10)) == 1

    sim.set_faults(names[1], down=True)
    samples = wait_for(url, lambda s: offline(s) == 1, 15)  # two failed audits, 1 s apart
    assert offline(samples) == 1 and online(samples) is None
    assert gauge("skyfleet_sites", availability="offline")(samples) == 1
    sim.clear_faults(names[1])
    assert online(wait_for(url, lambda s: online(s) == 1, 15)) == 1

    # process counters are shared by every app of this interpreter (other tests too): compare with before
    count = gauge("skyfleet_http_request_duration_seconds_count", method="POST", route="/v1/keypairs", status="202")
    runs = gauge("skyfleet_task_runs_total", kind="sync.keypair", outcome="succeeded")
    before = scrape(url)
    made = httpx.post(f"{url}/v1/keypairs", json={"spec": {"name": "metrics-key", "public_key": PUBLIC_KEY}},
                      timeout=30)
    assert made.status_code == 202, made.text
    succeeded = gauge("skyfleet_tasks", kind="sync.keypair", state="succeeded")
    samples = wait_for(url, lambda s: succeeded(s) == len(names), 30)
    assert succeeded(samples) == len(names)
    assert (runs(samples) or 0) - (runs(before) or 0) == len(names)
    assert gauge("skyfleet_queue_due_tasks")(samples) == 0
    assert (count(samples) or 0) - (count(before) or 0) == 1
