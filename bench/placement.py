"""Benchmark: placement decision latency with a large fleet's capacity in the database.

    .venv/bin/python bench/placement.py [--sites 1000] [--plans 200] [--db sqlite|postgresql|both]

Seeds --sites managed sites (labels, group, location), each with 4 hypervisors, 2 availability
zones, 10 flavors and 5 images in the inventory tables as a refresh stores them, a global quota with
a per-site observation on every site, and a declared lazy image. Then times ``plan`` (a fresh
session and transaction each, as a request has) for --plans requests cycling through pack, spread
over 3 sites, nearest, weighted, a selector and an explicit site with an availability zone, and one
page (100 sites) of ``GET /v1/locations``. Prints p50/p99/max and the statements per decision. The
target: p99 <= 50 ms at 1,000 sites. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchdb import run_on  # bench/ is the script's own directory, first on sys.path
from sqlalchemy import event, insert
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.placement import locations, service
from skyfleet.domains.placement.cache import FACTS
from skyfleet.domains.placement.schemas import BootRequest
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.sites.models import Site, SiteLabel
from skyfleet.domains.sync.models import SyncResource

PROJECT = "bench-project"
FLAVORS = [(f"m1.f{n}", 1 + n % 8, 1024 * (1 + n % 16), 10 * (1 + n % 5)) for n in range(10)]


def _item(site_id: str, kind: str, remote_id: str, name: str, *, status: str | None = None,
          project: str | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    now = utcnow()
    return {"site_id": site_id, "kind": kind, "remote_id": remote_id, "name": name, "status": status,
            "project_id": project, "ips": "", "digest": "0" * 32, "data": data or {}, "first_seen_at": now,
            "changed_at": now}


def seed(factory: sessionmaker[Session], sites: int) -> None:
    site_rows, labels, items, states = [], [], [], []
    for n in range(sites):
        sid = str(uuid.UUID(int=n + 1))
        site_rows.append({"id": sid, "name": f"site-{n:05d}", "description": "", "site_group": f"g{n % 10}",
                          "latitude": -60 + (n * 7.3) % 120, "longitude": -180 + (n * 13.1) % 360, "managed": True,
                          "auth_public": {}, "auth_encrypted": "x", "availability": "degraded" if n % 50 == 0
                          else "online", "consecutive_failures": 0, "capabilities": {}, "created_at": utcnow(),
                          "updated_at": utcnow()})
        labels += [{"site_id": sid, "key": "tier", "value": "edge" if n % 3 else "core"},
                   {"site_id": sid, "key": "cost", "value": str(1 + n % 17)}]
        for h in range(4):
            items.append(_item(sid, "hypervisors", str(h), f"hv{h}", status="up", data={
                "vcpus": 64, "vcpus_used": (n * 7 + h) % 64, "memory_mb": 262144, "memory_mb_used": (n * 997) % 262144,
                "local_gb": 2000, "local_gb_used": (n * 31) % 2000}))
        items += [_item(sid, "availability_zones", z, z, status="available") for z in ("az1", "az2")]
        items += [_item(sid, "flavors", f"f{i}", name, data={"vcpus": v, "ram": r, "disk": d, "is_public": True})
                  for i, (name, v, r, d) in enumerate(FLAVORS)]
        items += [_item(sid, "images", f"img{i}-{n}", f"image-{i}", status="active", project=None,
                        data={"visibility": "public"}) for i in range(5)]
        states.append({"project_id": PROJECT, "site_id": sid, "remote_project_id": PROJECT,
                       "usage": {"instances": n % 5, "cores": n % 9, "ram": 1024 * (n % 5)},
                       "limits": {"instances": 100, "cores": 400, "ram": 10**6}, "applied": {}, "pending": {},
                       "absent": False})
    with transaction(factory) as session:
        session.execute(insert(Site), site_rows)
        session.execute(insert(SiteLabel), labels)
        for start in range(0, len(items), 5000):
            session.execute(insert(InventoryItem), items[start:start + 5000])
        session.add(QuotaProject(project_id=PROJECT, mode="hard", policy="proportional", weights={}, breached={},
                                 overrides={"instances": 10**5, "cores": 10**6, "ram": 10**9}, unmapped={},
                                 domain_name="Default"))
        session.execute(insert(QuotaSiteState), states)
        session.add(SyncResource(kind="image", name="golden", scope=PROJECT, owner={}, placement={},
                                 spec={"name": "golden", "source": {"site_id": "x", "image_id": "y"}},
                                 options={"mode": "lazy"}, state="active", generation=1))


def requests() -> list[BootRequest]:
    base = {"name": "vm", "flavor": "m1.f3"}
    return [BootRequest(**base, image="image-1", count=5),
            BootRequest(**base, image="golden", count=6, placement={"policy": "spread", "min_sites": 3}),
            BootRequest(**base, image="image-2", placement={"policy": "nearest",
                                                            "near": {"latitude": 48.8, "longitude": 2.3}}),
            BootRequest(**base, image="image-0", count=3, placement={"policy": "weighted", "weight_label": "cost"}),
            BootRequest(**base, image="image-4", placement={"selector": "tier=core", "policy": "pack"}),
            BootRequest(**base, image="image-3", count=2, placement={"site": "site-00007",
                                                                     "availability_zone": "az2"})]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(factory: sessionmaker[Session], runs: int, call: Callable[[Session, int], Any],
          cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds of each call; ``cpu`` gets this process's CPU milliseconds of each (on a shared
    host the wall time includes waiting for a core, the CPU time does not)."""
    out = []
    for n in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        with transaction(factory) as session:
            call(session, n)
        out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - start_cpu) * 1000)
    return out


def run(label: str, url: str, sites: int, plans: int) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    seed(factory, sites)
    seeded = time.perf_counter() - started
    reqs = requests()
    statements: list[int] = []

    def count(*_: Any) -> None:
        statements[-1] += 1

    shown: list[int] = []

    def decide(session: Session, n: int) -> None:
        statements.append(0)
        plan = service.plan(session, project_id=PROJECT, is_admin=False, request=reqs[n % len(reqs)], now=utcnow())
        if n < len(reqs) and n not in shown:
            shown.append(n)
            kind = "explicit" if reqs[n].placement.site else (reqs[n].placement.policy or "pack")
            print(f"  {kind:9s} candidates {len(plan.candidates):5d} excluded "
                  f"{len(plan.excluded):4d} assignments {len(plan.assignments)} problem {plan.problem}")

    timed(factory, len(reqs), decide)  # warm the caches and the plans of the statements

    def decide_cold(session: Session, n: int) -> None:
        FACTS.clear()  # as after an inventory refresh changed the stored capacity, flavors or images
        decide(session, n)

    cold = timed(factory, 20, decide_cold)
    gc.collect()
    gc.freeze()  # what a started server does (skyfleet.api.app): the long-lived heap leaves the collector's walks
    statements.clear()
    event.listen(engine, "before_cursor_execute", count)
    cpu: list[float] = []
    load = os.getloadavg()[0]
    latencies = timed(factory, plans, decide, cpu)
    event.remove(engine, "before_cursor_execute", count)
    gc.disable()  # the same decisions without the collector's pauses, to show what the tail is made of
    quiet_cpu: list[float] = []
    timed(factory, plans, decide, quiet_cpu)
    gc.enable()
    page = timed(factory, 20, lambda s, _: locations.list_locations(
        s, project_id=PROJECT, is_admin=False, selector=[], group=None, limit=100, marker=None))
    print(f"{label:10s} sites {sites:5d} seeded in {seeded:5.1f} s | plan x{plans}: p50 "
          f"{statistics.median(latencies):6.1f} ms  p99 {percentile(latencies, 99):6.1f} ms  max "
          f"{max(latencies):6.1f} ms  statements/plan {max(statements)}\n{'':10s} Skyfleet CPU per plan: p50 "
          f"{statistics.median(cpu):6.1f} ms  p99 {percentile(cpu, 99):6.1f} ms (gc off: p50 "
          f"{statistics.median(quiet_cpu):6.1f} ms  p99 {percentile(quiet_cpu, 99):6.1f} ms)\n{'':10s} "
          f"after an inventory change (facts read again): p50 {statistics.median(cold):6.1f} ms  max "
          f"{max(cold):6.1f} ms over 20\n{'':10s} "
          f"locations page of 100: p50 "
          f"{statistics.median(page):6.1f} ms  p99 {percentile(page, 99):6.1f} ms | load average {load:.1f}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"placement benchmark: {args.sites} sites, {args.plans} decisions, {os.cpu_count()} cores")
    run_on(args.db, lambda label, url: run(label, url, args.sites, args.plans))

if __name__ == "__main__":
    main()
