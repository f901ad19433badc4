"""Embedded deployment: `skyfleet serve`'s runtime (SQLite, in-process workers) converges simulated
sites end to end through the API, re-running the same intent creates nothing, and a restart takes
back at once the tasks its dead predecessor held."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, register_sites


def wait_finished(client: TestClient, operation_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/operations/{operation_id}").json()
        if body["finished_at"] is not None:
            return body
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not finish")


def test_embedded_workers_converge_and_stay_idempotent(
    sim: Simulator, runtime_factory: Callable[..., Runtime]
) -> None:
    runtime = runtime_factory(engine_poll_interval=30)  # only the wake-up can make this test fast
    register_sites(runtime.factory, runtime.box, sim)
    sim.reset_counters()
    payload = {"name": "embedded-key", "public_key": PUBLIC_KEY}
    with TestClient(create_app(runtime, start_workers=True)) as client:
        probe = wait_finished(client, client.post("/v1/operations", json={"kind": "site.probe"}).json()["id"])
        assert probe["state"] == "succeeded"
        assert all(t["result"]["compute_version"] for t in probe["tasks"])
        for round_ in (1, 2):
            started = client.post("/v1/operations", json={"kind": "keypair.ensure", "payload": payload})
            done = wait_finished(client, started.json()["id"])
            assert done["state"] == "succeeded" and done["counts"]["succeeded"] == len(sim.site_names())
            assert {t["result"]["changed"] for t in done["tasks"]} == {round_ == 1}
    for name in sim.site_names():
        assert sim.count(name, "POST", "/compute/v2.1/os-keypairs") == 1


def test_embedded_restart_takes_back_the_leases_of_its_dead_self(
    sim: Simulator, runtime_factory: Callable[..., Runtime]
) -> None:
    runtime = runtime_factory(engine_poll_interval=1, periodic_jobs=False)
    register_sites(runtime.factory, runtime.box, sim)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        op = client.post("/v1/operations", json={"kind": "keypair.ensure",
                                                  "payload": {"name": "restart-key", "public_key": PUBLIC_KEY}})
    dead = Engine(runtime.factory, box=runtime.box, config=EngineConfig(lease_seconds=30))
    assert len(dead.lease(100)) == len(sim.site_names())  # the last process died holding every task
    runtime.close()
    restarted = runtime_factory(engine_poll_interval=1, periodic_jobs=False)
    started = time.monotonic()
    with TestClient(create_app(restarted, start_workers=True)) as client:
        done = wait_finished(client, op.json()["id"], timeout=20)
    assert done["state"] == "succeeded"
    assert time.monotonic() - started < 10  # not after the 30 s leases expired


def test_the_health_audits_login_serves_the_engines_next_task(
    sim: Simulator, runtime_factory: Callable[..., Runtime]
) -> None:
    """One login per site per audit cycle for the whole process: the engine's task right after the audit
    uses the audit's token: no second POST /auth/tokens to the site."""
    runtime = runtime_factory(engine_poll_interval=30, periodic_jobs=False)
    register_sites(runtime.factory, runtime.box, sim)
    names = sim.site_names()
    sim.reset_counters()
    runtime.audit_now()
    assert all(sim.count(n, "POST", "/identity/v3/auth/tokens") == 1 for n in names), \
        {n: sim.count(n, "POST", "/identity/v3/auth/tokens") for n in names}
    sim.reset_counters()
    with TestClient(create_app(runtime, start_workers=True)) as client:
        started = client.post("/v1/operations", json={"kind": "keypair.ensure",
                                                      "payload": {"name": "shared-token", "public_key": PUBLIC_KEY}})
        done = wait_finished(client, started.json()["id"])
    assert done["state"] == "succeeded", done
    assert {n: sim.count(n, "POST", "/identity/v3/auth/tokens") for n in names} == dict.fromkeys(names, 0)
    assert all(sim.count(n, "POST", "/compute/v2.1/os-keypairs") == 1 for n in names)
