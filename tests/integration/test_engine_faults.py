"""The engine on the production path under faults: PostgreSQL, `skyfleet worker` processes woken
through RabbitMQ, simulated sites. A killed worker, a stopped database and failing sites must cost
time only: every task ends exactly once (the simulator counts one keypair POST per site). The
database is a throwaway cluster of these tests' own (``conftest.py``), never the machine's shared
server; leases are the production 30 s, so a killed worker's tasks can come back fast only through
its stopped heartbeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.simulator import Simulator
from tests.conftest import make_settings
from tests.engine_support import PUBLIC_KEY, register_sites, set_availability, tasks_of, wait_until
from tests.integration.conftest import ThrowawayPostgres

pytestmark = [pytest.mark.postgres, pytest.mark.faults, pytest.mark.slow]
BROKER = os.environ.get("SKYFLEET_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
KEY = Fernet.generate_key().decode()
KEYPAIR_POSTS = ("POST", "/compute/v2.1/os-keypairs")
ENGINE_ENV = {
    "SKYFLEET_ENGINE_LEASE_SECONDS": "30", "SKYFLEET_ENGINE_HEARTBEAT_SECONDS": "1",
    "SKYFLEET_ENGINE_WORKER_TTL": "4", "SKYFLEET_ENGINE_POLL_INTERVAL": "1", "SKYFLEET_SITE_TIMEOUT": "2",
    "SKYFLEET_AUDIT_INTERVAL": "3600", "SKYFLEET_ENGINE_PER_SITE": "2", "SKYFLEET_PERIODIC_JOBS": "false",
    "SKYFLEET_TASK_RETRY": json.dumps({"initial": 0.5, "multiplier": 2, "max_delay": 5, "jitter": 0.2,
                                       "max_attempts": 3}),
}


class Fleet:
    """The API (in this process, no workers) plus `skyfleet worker` subprocesses."""

    def __init__(self, tmp_path: Path, pg_url: str) -> None:
        self.tmp_path, self.pg_url = tmp_path, pg_url
        overrides = {k.removeprefix("SKYFLEET_").lower(): v for k, v in ENGINE_ENV.items()}
        overrides["task_retry"] = json.loads(overrides["task_retry"])
        self.runtime: Runtime = build_runtime(make_settings(
            tmp_path, database_url=pg_url, secret_keys=KEY, broker_url=BROKER, **overrides))
        self.client = TestClient(create_app(self.runtime, start_workers=False))
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, concurrency: int = 16, **settings: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **ENGINE_ENV, "SKYFLEET_DATABASE_URL": self.pg_url, "SKYFLEET_SECRET_KEYS": KEY,
               "SKYFLEET_BROKER_URL": BROKER, "SKYFLEET_DATA_DIR": str(self.tmp_path), **settings}
        log = (self.tmp_path / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen([str(Path(sys.executable).parent / "skyfleet"), "worker", "--concurrency",
                                 str(concurrency)], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def submit(self, kind: str, payload: dict[str, Any], sites: list[str] | None = None) -> str:
        response = self.client.post("/v1/operations", json={"kind": kind, "payload": payload, "sites": sites})
        assert response.status_code == 202, response.text
        operation_id: str = response.json()["id"]
        return operation_id

    def show(self, operation_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/operations/{operation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def counts(self, operation_id: str) -> dict[str, int]:
        return dict(self.show(operation_id)["counts"])

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.client.close()
        self.runtime.close()


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[Fleet]:
    made = Fleet(tmp_path, pg_url)
    yield made
    made.close()


@pytest.fixture
def simulator() -> Iterator[Callable[..., Simulator]]:
    sims: list[Simulator] = []

    def start(sites: int, latency_ms: float) -> Simulator:
        sim = Simulator(sites=sites, latency_ms=latency_ms)
        sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


def one_post_per_site(sim: Simulator) -> dict[str, int]:
    """Sites where the keypair was not created exactly once (empty when all is well).

    A create is a POST the site answered with 2xx. Over a real network a POST can be sent twice (its
    answer was lost to a timeout, and observing the site before the site had applied it showed
    nothing); the site then refuses the second with 409, so it creates nothing: that is counted as
    an attempt here, not as a create.
    """
    method, path = KEYPAIR_POSTS
    creates = {name: sim.answered(name, method, path) for name in sim.site_names()}
    return {name: n for name, n in creates.items() if n != 1}


def post_outcomes(sim: Simulator, statuses: range) -> int:
    method, path = KEYPAIR_POSTS
    return sum(sim.answered(name, method, path, statuses=statuses) for name in sim.site_names())


def unexplained_posts(sim: Simulator) -> dict[str, int]:
    """Per site, keypair POSTs that neither created the keypair, nor were refused as a duplicate (409),
    nor were cut off before the site applied them (the client died: 499)."""
    method, path = KEYPAIR_POSTS
    odd = {name: sim.counters(name).get(KEYPAIR_POSTS, 0) - sim.answered(name, method, path)
           - sim.answered(name, method, path, statuses=range(409, 410))
           - sim.answered(name, method, path, statuses=range(499, 500)) for name in sim.site_names()}
    return {name: n for name, n in odd.items() if n}


def test_killed_worker_loses_and_duplicates_nothing(fleet: Fleet, simulator: Callable[..., Simulator]) -> None:
    # 150 ms per call: the first worker needs ~15 s for the 200 sites, time enough for the second to start
    # and lease work even on a loaded machine (with 40 ms the first could finish before the second woke up)
    sim = simulator(200, 150)
    register_sites(fleet.runtime.factory, fleet.runtime.box, sim)
    # a site timeout far above the latency: a request the client gave up on is a cut POST (499) too, and on
    # a loaded machine the file's 2 s did cut a few; here the only cuts counted must be the kill's
    patient = {"SKYFLEET_SITE_TIMEOUT": "20"}
    first = fleet.start_worker(concurrency=8, **patient)
    op = fleet.submit("keypair.ensure", {"name": "fleet-key", "public_key": PUBLIC_KEY})
    assert wait_until(lambda: fleet.counts(op)["succeeded"] >= 30, 60), fleet.counts(op)
    second = fleet.start_worker(concurrency=16, **patient)
    assert wait_until(lambda: any(f":{second.pid}:" in (t.lease_owner or "")
                                  for t in tasks_of(fleet.runtime.factory, op)), 60, 0.1)
    first.send_signal(signal.SIGKILL)  # kill -9 in the middle of the operation
    killed = time.monotonic()
    first.wait(10)
    held = {t.id for t in tasks_of(fleet.runtime.factory, op)
            if t.state == "running" and f":{first.pid}:" in (t.lease_owner or "")}
    assert fleet.counts(op)["succeeded"] < 200

    def resumed() -> bool:  # every task the dead worker held was taken again (or is done)
        return all(t.attempts >= 2 or t.state == "succeeded" for t in tasks_of(fleet.runtime.factory, op)
                   if t.id in held)

    assert wait_until(resumed, 40, 0.1)
    recovery = time.monotonic() - killed
    print(f"{len(held)} task(s) held by the killed worker resumed {recovery:.1f}s after kill -9")
    assert recovery <= 10  # the survivor saw its heartbeat stop; the 30 s leases did not have to expire
    assert wait_until(lambda: fleet.show(op)["state"] == "succeeded", 90, 0.5), fleet.counts(op)
    assert one_post_per_site(sim) == {}
    assert unexplained_posts(sim) == {}
    assert post_outcomes(sim, range(499, 500)) <= 8  # only the killed worker's requests in flight were cut
    tasks = tasks_of(fleet.runtime.factory, op)
    assert len(tasks) == 200 and all(t.state == "succeeded" for t in tasks)
    assert all(t.attempts == 2 for t in tasks if t.id in held)  # taken over once each


def test_database_stopped_mid_operation(fleet: Fleet, simulator: Callable[..., Simulator],
                                       throwaway_pg: ThrowawayPostgres) -> None:
    sim = simulator(100, 40)
    register_sites(fleet.runtime.factory, fleet.runtime.box, sim)
    fleet.start_worker(concurrency=8)
    op = fleet.submit("keypair.ensure", {"name": "db-key", "public_key": PUBLIC_KEY})
    assert wait_until(lambda: fleet.counts(op)["succeeded"] >= 20, 60), fleet.counts(op)
    try:
        throwaway_pg.stop()
        response = fleet.client.get(f"/v1/operations/{op}")
        assert response.status_code == 503
        assert response.json()["detail"] == "the database is unavailable; retry shortly"
        time.sleep(3)  # the worker keeps calling sites, cannot record, and waits
        assert fleet.client.get("/healthz").status_code == 503
    finally:
        throwaway_pg.start()
    assert wait_until(lambda: fleet.client.get("/healthz").status_code == 200, 30)
    assert wait_until(lambda: fleet.show(op)["state"] == "succeeded", 90, 0.5), fleet.counts(op)
    assert one_post_per_site(sim) == {}
    assert fleet.workers[0].poll() is None  # the worker survived the outage on its own


def test_failing_sites_cost_only_their_own_tasks(fleet: Fleet, simulator: Callable[..., Simulator]) -> None:
    sim = simulator(100, 20)
    names = sim.site_names()
    down, hang, errors, auth = names[:5], names[5:10], names[10:15], names[15:20]
    healthy = names[20:]
    register_sites(fleet.runtime.factory, fleet.runtime.box, sim)
    for name in down:
        sim.set_faults(name, down=True)
    for name in hang:
        sim.set_faults(name, hang=True)
    for name in errors:
        sim.set_faults(name, error_rate=1.0)
    for name in auth:
        sim.set_faults(name, auth_fail=True)
    offline = down[:2]  # the health audit already saw these dead: their circuit is open
    set_availability(fleet.runtime.factory, offline, "offline")
    fleet.start_worker(concurrency=16)
    started = time.monotonic()
    op = fleet.submit("keypair.ensure", {"name": "edge-key", "public_key": PUBLIC_KEY})

    def by_site() -> dict[str, dict[str, Any]]:
        return {t["site_name"]: t for t in fleet.show(op)["tasks"]}

    assert wait_until(lambda: all(by_site()[n]["state"] == "succeeded" for n in healthy), 30, 0.2)
    healthy_seconds = time.monotonic() - started
    assert wait_until(lambda: fleet.counts(op)["pending"] + fleet.counts(op)["running"] == len(offline), 60, 0.5)
    tasks = by_site()
    failing = [n for n in down + hang + errors + auth if n not in offline]
    assert all(tasks[n]["state"] == "failed" and tasks[n]["attempts"] == 3 for n in failing), tasks
    # an aborted connection is "cannot connect"; on a saturated host the abort may come after the connect
    # timeout, so a dead site may also read "timed out" -- never a site error (503/401) or success
    assert all(("cannot connect" in tasks[n]["last_error"] or "timed out" in tasks[n]["last_error"])
               for n in down[2:]), {n: tasks[n]["last_error"] for n in down[2:]}
    assert all("timed out" in tasks[n]["last_error"] for n in hang)
    assert all("503" in tasks[n]["last_error"] for n in errors)
    assert all("401" in tasks[n]["last_error"] for n in auth)
    assert all(tasks[n]["state"] == "pending" and tasks[n]["attempts"] == 0 for n in offline)
    print(f"80 healthy sites done in {healthy_seconds:.1f}s while 20 were failing")

    sim.clear_faults()
    for name in names:
        sim.set_faults(name, latency_ms=20)
    set_availability(fleet.runtime.factory, offline, "online")  # the breaker closes
    assert fleet.client.post(f"/v1/operations/{op}/retry").status_code == 202
    assert wait_until(lambda: fleet.show(op)["state"] == "succeeded", 60, 0.5), fleet.counts(op)
    assert one_post_per_site(sim) == {}
