"""Embedded deployment: `skyfleet serve`'s runtime (SQLite, in-process workers) converges simulated
sites end to end through the API, and re-running the same intent creates nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
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
