"""Benchmark: servers spread over many simulated sites through Skyfleet, and the naive way.

    .venv/bin/python bench/boots.py [--sites 100] [--servers 1000] [--latency-ms 50] [--sequential 10]

Embedded deployment (SQLite, `skyfleet serve`'s in-process workers, periodic jobs off). Each site
holds an image; one inventory refresh stores what placement reads. Then ``--servers`` servers are
asked for in requests of 100 (policy ``spread`` over every site), as a user would through the API,
and the clock stops when every server reads ``active``. Printed: each request's latency (the
placement decision is inside it), the time to all ACTIVE, and a sequential openstacksdk loop (create
one server and wait for it, site after site) over ``--sequential`` servers, extrapolated. Numbers are
printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openstack
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from fanout import KEY, register, start_simulator

from skyfleet.api.app import create_app
from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings
from skyfleet.reconcile.inventory import refresh_fleet

BATCH = 100


def seed_images(clouds: dict[str, Any]) -> None:
    def one(cloud: dict[str, Any]) -> None:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **cloud)
        made = conn.image.post("/images", json={"name": "base", "disk_format": "raw",
                                                "container_format": "bare"}).json()
        conn.image.put(f"/images/{made['id']}/file", data=b"x" * 1024,
                       headers={"Content-Type": "application/octet-stream"})
        conn.compute.update_quota_set(conn.current_project_id, instances=20)  # room for the naive loop's too

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, clouds.values()))


def sequential(clouds: dict[str, Any], count: int) -> float:
    names = list(clouds)[:count]
    started = time.monotonic()
    for i, name in enumerate(names):
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **clouds[name])
        image = conn.image.find_image("base")
        flavor = conn.compute.find_flavor("m1.nano")
        server = conn.compute.create_server(name=f"seq-{i}", image_id=image.id, flavor_id=flavor.id,
                                            networks="none")
        conn.compute.wait_for_server(server, wait=120, interval=0.5)
        conn.close()
    return (time.monotonic() - started) / max(1, len(names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--sequential", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.sites, args.latency_ms, workdir)
        try:
            print(f"{args.servers} servers over {args.sites} simulated sites, {args.latency_ms:.0f} ms per request, "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
            settings = Settings(auth_mode="noauth", data_dir=str(workdir), database_url=f"sqlite:///{workdir}/b.db",
                                secret_keys=KEY, engine_concurrency=args.concurrency, periodic_jobs=False,
                                noauth_allowed_hosts="testserver")
            runtime = build_runtime(settings)
            register(runtime.factory, runtime.box, clouds)
            started = time.monotonic()
            seed_images(clouds)
            refresh_fleet(runtime.factory, box=runtime.box, concurrency=64, timeout=30, full=True)
            print(f"images seeded and inventory read in {time.monotonic() - started:.1f} s", flush=True)
            with TestClient(create_app(runtime, start_workers=True)) as client:
                started, latencies, ids = time.monotonic(), [], []
                for batch in range(0, args.servers, BATCH):
                    count = min(BATCH, args.servers - batch)
                    t0 = time.monotonic()
                    answer = client.post("/v1/servers", json={
                        "name": f"b{batch}", "flavor": "m1.nano", "image": "base", "count": count,
                        "placement": {"policy": "spread", "min_sites": min(args.sites, count)}})
                    latencies.append(time.monotonic() - t0)
                    assert answer.status_code == 202, answer.text
                    ids += [s["id"] for s in answer.json()["servers"]]
                print(f"requests of {BATCH}: p50 {statistics.median(latencies) * 1000:.0f} ms, max "
                      f"{max(latencies) * 1000:.0f} ms each (placement of {BATCH} servers over {args.sites} sites, "
                      f"rows, first tasks)", flush=True)
                while True:
                    rows = client.get("/v1/servers", params={"limit": 1000}).json()["servers"]
                    done = [r for r in rows if r["status"] in ("active", "failed")]
                    if len(done) >= len(ids) or time.monotonic() - started > 1800:
                        break
                    time.sleep(1)
                elapsed = time.monotonic() - started
                active = sum(r["status"] == "active" for r in rows)
                spread = len({r["site"] for r in rows if r["status"] == "active"})
                print(f"engine: {active}/{len(ids)} ACTIVE on {spread} sites in {elapsed:.1f} s "
                      f"({active / elapsed:.1f} servers/s)", flush=True)
            runtime.close()
            per = sequential(clouds, args.sequential)
            naive = per * args.servers
            print(f"sequential openstacksdk loop: {per:.2f} s per server over {args.sequential}; {naive:.0f} s for "
                  f"{args.servers} (extrapolated); engine {naive / elapsed:.0f}x faster", flush=True)
        finally:
            sim.terminate()
            sim.wait(30)


if __name__ == "__main__":
    main()
