"""Benchmark: one desired keypair synced to many simulated sites through the engine, and the naive way.

    .venv/bin/python bench/sync.py [--sites 1000] [--latency-ms 50] [--concurrency 128] [--sequential-sites 100]
    .venv/bin/python bench/sync.py --drift [--resources 100] [--interval 60] [--drifts 20] ...  (bench/sync_drift.py)

Embedded deployment (SQLite, the in-process worker pool). The keypair is declared as the API does
(resource + bindings + operation in one transaction); the clock stops when 99% and then 100% of the
bindings read ``in-sync``. A second keypair shows the warm figure (tokens cached). Naive: a
sequential openstacksdk loop (connect, look the keypair up, create it) over --sequential-sites
sites. Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openstack
from sqlalchemy import and_, case, func, select

sys.path.insert(0, str(Path(__file__).parent))
import sync_drift
from fanout import KEY, register, start_simulator

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sync import service
from skyfleet.domains.sync.converge import converge, fold
from skyfleet.domains.sync.models import SyncResource
from skyfleet.domains.sync.schemas import ResourceCreate
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.runner import engine_config
from skyfleet.secrets import SecretBox

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-bench")
LEASES: list[int] = []  # tasks leased by each lease transaction of the pool (empty ones too)
CALLER = service.Caller(user_id="bench", user_name="bench", project_id=None, project_name=None, is_admin=True,
                        real_user=False)


def declare(factory: Any, name: str) -> str:
    with transaction(factory) as session:
        resource = service.create(session, kind="keypair", data=ResourceCreate(spec={}),
                                  spec={"name": name, "public_key": PUBLIC_KEY}, caller=CALLER, now=utcnow())
        converge(session, resource, now=utcnow())
        return resource.id


def in_sync(factory: Any, resource_id: str) -> tuple[int, int]:
    """(tasks succeeded with the keypair in sync, all tasks) of the resource's operation: one cheap query
    (folding every binding on each poll would compete with the workers for the database)."""
    with transaction(factory) as session:
        resource = session.get(SyncResource, resource_id)
        assert resource is not None
        # counted by SQLite (JSON read there): decoding every task's result in Python on each poll cost
        # this process more CPU than a tenth of the fan-out it measures
        done = func.sum(case((and_(Task.state == "succeeded",
                                   func.json_extract(Task.result, "$.status") == "in-sync"), 1), else_=0))
        row = session.execute(select(done, func.count()).where(Task.operation_id == resource.operation_id)).one()
        return int(row[0] or 0), int(row[1])


def check_bindings(factory: Any, resource_id: str) -> int:
    """Fold once at the end: the bindings must agree with the tasks."""
    with transaction(factory) as session:
        resource = session.get(SyncResource, resource_id)
        assert resource is not None
        return sum(b.status == "in-sync" for b in fold(session, resource, now=utcnow()).values())


def sim_requests(base_url: str) -> int:
    """Requests the simulator has answered so far, all sites together (its /_sim admin endpoint)."""
    return sum(site["requests"] for site in httpx.get(f"{base_url}/_sim/sites", timeout=60).json()["sites"])


def engine_run(factory: Any, pool: WorkerPool, name: str, label: str, base_url: str, timeout: float = 600) -> None:
    calls0, cpu0, mine0, times0 = sim_requests(base_url), time.process_time(), time.thread_time(), os.times()
    leases0, commits0 = list(LEASES), pool.engine.writes.batches
    started = time.monotonic()
    resource_id = declare(factory, name)
    pool.wake()
    t99 = None
    while time.monotonic() - started < timeout:
        done, total = in_sync(factory, resource_id)
        elapsed = time.monotonic() - started
        if t99 is None and done >= 0.99 * total:
            t99 = elapsed
        if done == total:
            # This (main) thread only declares and polls: its CPU is the benchmark's, not Skyfleet's.
            cpu = time.process_time() - cpu0 - (time.thread_time() - mine0)
            calls, leased = sim_requests(base_url) - calls0, LEASES[len(leases0):]
            print(f"{label:<40} {total:>5} sites  99% in-sync {t99:>6.2f} s  100% {elapsed:>6.2f} s  "
                  f"({total / elapsed:.0f} sites/s; bindings in-sync: {check_bindings(factory, resource_id)})",
                  flush=True)
            print(f"{'':<40} Skyfleet CPU {cpu:.2f} s over {calls} site calls: "
                  f"{cpu / max(calls, 1) * 1000:.2f} ms per site call, {cpu / total * 1000:.2f} ms per site "
                  f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
            times = os.times()
            print(f"{'':<40} of the process's CPU: user {times.user - times0.user:.2f} s, "
                  f"system {times.system - times0.system:.2f} s", flush=True)
            print(f"{'':<40} {len(leased)} lease transactions ({sum(leased) / max(len(leased), 1):.1f} tasks "
                  f"each), {pool.engine.writes.batches - commits0} group commits", flush=True)
            return
        time.sleep(0.2)
    print(f"{label:<40} timeout: {done}/{total} in sync after {timeout} s", flush=True)


def sequential(clouds: dict[str, Any], count: int) -> float:
    """Connect, look the keypair up and create it, site after site; prints and returns the seconds taken."""
    names = list(clouds)[:count]
    started = time.monotonic()
    for name in names:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **clouds[name])
        if conn.compute.find_keypair("bench-seq") is None:
            conn.compute.create_keypair(name="bench-seq", public_key=PUBLIC_KEY)
        conn.close()
    elapsed = time.monotonic() - started
    print(f"{'sequential openstacksdk loop':<40} {len(names):>5} sites  100% {elapsed:>6.2f} s  "
          f"({len(names) / elapsed:.1f} sites/s; {elapsed / len(names) * 1000:.0f} ms per site)", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--sequential-sites", type=int, default=100)
    parser.add_argument("--drift", action="store_true", help="the drift audit benchmark (bench/sync_drift.py)")
    parser.add_argument("--resources", type=int, default=100, help="--drift: keypairs declared on every site")
    parser.add_argument("--interval", type=float, default=Settings.model_fields["sync_audit_interval"].default,
                        help="--drift: seconds between drift audits (the server's default)")
    parser.add_argument("--drifts", type=int, default=20, help="--drift: keypairs deleted behind Skyfleet's back")
    parser.add_argument("--cycles", type=int, default=3, help="--drift: audit intervals the deletes spread over")
    parser.add_argument("--legacy-sites", type=int, default=20,
                        help="--drift: sites of today's per-resource audit, measured for comparison (0: none)")
    args = parser.parse_args()
    if args.drift:
        with tempfile.TemporaryDirectory() as tmp:
            sync_drift.main(args, Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.sites, args.latency_ms, workdir)
        try:
            print(f"{args.sites} simulated sites, {args.latency_ms:.0f} ms latency per request, "
                  f"{os.cpu_count()} CPUs", flush=True)
            url = f"sqlite:///{workdir / 'sync.db'}"
            migrate.upgrade(url)
            factory = make_session_factory(make_engine(url))
            box = SecretBox([KEY])
            register(factory, box, clouds)
            settings = Settings(auth_mode="noauth", engine_concurrency=args.concurrency)
            pool = WorkerPool(Engine(factory, box=box, config=engine_config(settings)),
                              concurrency=args.concurrency, poll_interval=1.0, batch=settings.engine_batch)
            lease = pool.engine.lease

            def counted(limit: int) -> list[Any]:
                batch = lease(limit)
                LEASES.append(len(batch))
                return batch

            pool.engine.lease = counted  # type: ignore[method-assign]
            pool.start()
            base_url = next(iter(clouds.values()))["auth"]["auth_url"].split("/site-")[0]
            engine_run(factory, pool, "bench-cold", f"engine, SQLite, {args.concurrency} threads (cold)", base_url)
            engine_run(factory, pool, "bench-warm", f"engine, SQLite, {args.concurrency} threads (warm)", base_url)
            pool.stop()
            sequential(clouds, args.sequential_sites)
        finally:
            sim.terminate()
            sim.wait(30)


if __name__ == "__main__":
    main()
