"""Benchmark: the global inventory over 1,000 simulated sites x 200 servers (200,000 server rows).

    .venv/bin/python bench/inventory.py [--sites 1000] [--servers 200] [--concurrency 128] [--queries 200]

Seeds every simulated site's Nova state directly (copies of one server booted through the API), then
measures: a full refresh of every kind on every site; an incremental refresh with nothing changed;
an incremental refresh with 1% of the servers changed (status); p50/p99 of a filtered list
(project + status) and of the summary through the HTTP API. SQLite, one process (the simulator runs
in-process too, so both share one interpreter: the numbers are pessimistic).
"""

from __future__ import annotations

import argparse
import copy
import io
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import openstack
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.routes import inventory as inventory_routes
from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.reconcile.inventory import refresh_fleet
from skyfleet.simulator import Simulator

PROJECTS = [f"project-{n:02d}" for n in range(20)]


def template_server(sim: Simulator, site: str) -> dict[str, Any]:
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site, user="admin"))
    image = conn.image.create_image(name="cirros", data=io.BytesIO(b"boot" * 64), disk_format="qcow2",
                                    container_format="bare")
    net = conn.network.create_network(name="bench")
    conn.network.create_subnet(network_id=net.id, cidr="10.0.0.0/16", ip_version=4)
    server = conn.compute.create_server(name="tpl", image_id=image.id, flavor_id="1", networks=[{"uuid": net.id}])
    conn.compute.wait_for_server(server, wait=10, interval=0.05)
    found: dict[str, Any] = sim.state(site).nova.servers.pop(server.id)
    return found


def seed(sim: Simulator, template: dict[str, Any], per_site: int) -> None:
    now = time.time()
    for n, site in enumerate(sim.site_names()):
        servers = sim.state(site).nova.servers
        for i in range(per_site):
            sid = str(uuid.uuid4())
            server = copy.copy(template)
            server.update(id=sid, name=f"vm-{n:04d}-{i:03d}", tenant_id=PROJECTS[(n + i) % len(PROJECTS)],
                          status="ACTIVE", _created=now - 86400, _updated=now - random.uniform(60, 86400),
                          metadata={}, _tags=[])
            servers[sid] = server


def change(sim: Simulator, fraction: float) -> int:
    changed, now = 0, time.time() + 1
    for site in sim.site_names():
        servers = list(sim.state(site).nova.servers.values())
        for server in random.sample(servers, max(1, int(len(servers) * fraction))):
            server.update(status="SHUTOFF" if server["status"] == "ACTIVE" else "ACTIVE", _updated=now)
            changed += 1
    return changed


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def timed_queries(client: TestClient, path: str, params: list[dict[str, Any]]) -> list[float]:
    samples = []
    for query in params:
        started = time.perf_counter()
        response = client.get(path, params=query)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="skyfleet-bench-inventory-"))
    sim = Simulator(sites=args.sites)
    sim.start()
    try:
        seed(sim, template_server(sim, sim.site_names()[0]), args.servers)
        runtime = build_runtime(Settings(data_dir=workdir, auth_mode="noauth", site_timeout=60,
                                         inventory_concurrency=args.concurrency))
        with transaction(runtime.factory) as session:
            for name in sim.site_names():
                cloud = sim.cloud(name)
                auth = {**cloud["auth"], "region_name": cloud.get("region_name"), "interface": "public"}
                sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(
                    {"name": name, "auth": auth})).availability = "online"

        pool = SitePool()  # sessions and tokens kept between refreshes, as the periodic job does

        def refresh(full: bool) -> dict[str, Any]:
            return refresh_fleet(runtime.factory, box=runtime.box, concurrency=args.concurrency, timeout=60,
                                 full=full, pool=pool).as_dict()

        print(f"fleet: {args.sites} sites x {args.servers} servers = {args.sites * args.servers} servers")
        print(f"full refresh (13 kinds):         {refresh(True)}")
        print(f"incremental, nothing changed:    {refresh(False)}")
        changed = change(sim, 0.01)
        print(f"incremental, {changed} servers changed: {refresh(False)}")
        with TestClient(create_app(runtime, start_workers=False), base_url="http://127.0.0.1") as client:
            lists = [{"project": random.choice(PROJECTS), "status": "SHUTOFF", "limit": 100}
                     for _ in range(args.queries)]
            listed = timed_queries(client, "/v1/inventory/servers", lists)
            print(f"list servers project+status:     {percentiles(listed)}")
            rounds = max(20, args.queries // 10)
            cold = []
            for _ in range(rounds):
                inventory_routes._summary_cache.clear()
                cold += timed_queries(client, "/v1/inventory/summary", [{}])
            print(f"summary, computed:               {percentiles(cold)}")
            warm = timed_queries(client, "/v1/inventory/summary", [{}] * args.queries)
            print(f"summary, {inventory_routes.SUMMARY_TTL:.0f} s cache:              {percentiles(warm)}")
        runtime.close()
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
