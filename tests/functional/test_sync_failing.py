"""A site that answers 5xx for a while: its binding is marked failed once the attempts are used, then
retried at most 60 s apart (not at the next drift audit), at once when the health audit sees the site
come back online, and the resource's operation follows its bindings to success. Fake clock: no waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.config import RetryPolicy
from skyfleet.db.engine import transaction
from skyfleet.domains.sites.models import Site
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.policy import FakeClock
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, fresh_clock, register_sites, tasks_of
from tests.support import FakeProber

POLICY = RetryPolicy(initial=5, multiplier=2, max_delay=300, jitter=0, max_attempts=3, failing_every=60)


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime],
          db_url: str) -> Iterator[tuple[Simulator, Runtime, TestClient, Engine, FakeClock]]:
    sim = Simulator(sites=2)
    sim.start()
    runtime = runtime_factory(db_url, FakeProber())
    register_sites(runtime.factory, runtime.box, sim)
    clock = fresh_clock()
    engine = Engine(runtime.factory, box=runtime.box, clock=clock, config=EngineConfig(site_timeout=5, retry=POLICY))
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield sim, runtime, client, engine, clock
    sim.stop()


def binding(client: TestClient, site: str) -> dict[str, Any]:
    found: dict[str, Any] = next(b for b in client.get("/v1/keypairs/flaky").json()["bindings"]
                                 if b["site_name"] == site)
    return found


def test_failed_binding_is_retried_at_most_60_s_apart_and_the_operation_follows(fleet: Any) -> None:
    sim, runtime, client, engine, clock = fleet
    a, _ = sim.site_names()
    sim.set_faults(a, error_rate=1.0)
    op = client.post("/v1/keypairs", json={"spec": {"name": "flaky", "public_key": PUBLIC_KEY}}).json()["operation_id"]
    gaps = []
    for _ in range(8):  # 3 attempts, then marked failed and retried
        engine.run_until_idle()
        [task] = [t for t in tasks_of(runtime.factory, op) if t.site_name == a]
        gap = (task.next_attempt_at - clock.now()).total_seconds()
        gaps.append(gap)
        clock.advance(gap)
    assert max(gaps) <= 60 and gaps[-1] == 60
    failed = binding(client, a)
    assert failed["status"] == "failed" and "HTTP 5" in failed["error"] and "failing after" in failed["error"]
    assert client.get(f"/v1/operations/{op}").json()["state"] == "running"  # still trying
    sim.clear_faults()  # the site recovers (never marked offline)
    clock.advance(60)
    engine.run_until_idle()
    assert binding(client, a)["status"] == "in-sync"
    assert client.get(f"/v1/operations/{op}").json()["state"] == "succeeded"
    assert any(kp["name"] == "flaky" for kp in sim.state(a).nova.keypairs.values())


def test_a_site_back_online_is_retried_at_once(fleet: Any) -> None:
    sim, runtime, client, engine, clock = fleet
    a, _ = sim.site_names()
    sim.set_faults(a, error_rate=1.0)
    client.post("/v1/keypairs", json={"spec": {"name": "flaky", "public_key": PUBLIC_KEY}})
    for _ in range(5):
        engine.run_until_idle()
        clock.advance(30)
    assert binding(client, a)["status"] == "failed"
    with transaction(runtime.factory) as session:  # the health audit had seen it offline
        session.execute(update(Site).where(Site.name == a).values(availability="offline", consecutive_failures=2))
    sim.clear_faults()
    report = runtime.audit_now()  # ... and now sees it again
    assert report.transitions == {a: "online"} and report.resumed == 1  # type: ignore[attr-defined]
    assert engine.run_until_idle() == 1  # no clock advance: due at once
    assert binding(client, a)["status"] == "in-sync"
