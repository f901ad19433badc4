"""Benchmark: the drift audit at N sites x M declared keypairs; ``bench/sync.py --drift`` runs it.

    .venv/bin/python bench/sync.py --drift [--sites 1000] [--resources 100] [--latency-ms 50]
        [--interval 60] [--drifts 20] [--cycles 3] [--legacy-sites 20]

Setup (not measured): the simulator (its own process, ``--latency-ms`` per request) gives every site's
``admin`` user the keypairs ``drift-000``... in one admin request (``POST /_sim/keypairs``), and Skyfleet's
database (SQLite) records them as declared and in sync on every site, as a finished declaration leaves them
(resources, one succeeded task per site naming the site's user, bindings ``in-sync``). Declaring them
through the engine would take 100,000 tasks; what is measured here is what comes after.

Measured, in this process (the drift audit on its own thread, the engine's worker pool beside it, lanes as a
server has them):
1. today's per-resource audit (``run_sync_audit``: one task per binding) on --legacy-sites sites, in a
   database of its own: the calls one site receives per cycle, by path, and Skyfleet's CPU per site;
2. one drift audit cycle over every site, cold (first token per site) and warm: seconds, calls per site by
   path (counted at the simulator), Skyfleet's CPU per site and per site call;
3. the audit running every --interval seconds for --cycles intervals while, at random moments, --drifts
   keypairs (a distinct name each) are deleted on random sites behind Skyfleet's back through the
   simulator's admin API (``DELETE /_sim/sites/{site}/keypairs/{name}``); each is timed from its delete to
   the moment the simulator shows every site holding that name again (``GET /_sim/resources``, polled
   every 250 ms): p50, p99, max. Over the run: calls per site per minute by kind, CPU per site call.
The load average is printed at the start and the end: the host may be shared. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fanout import KEY, register, start_simulator
from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.base import table_of, utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sync import service
from skyfleet.domains.sync.models import SyncBinding
from skyfleet.domains.sync.schemas import ResourceCreate
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.reconcile.drift import scan_fleet
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.lanes import Lanes
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.runner import engine_config
from skyfleet.reconcile.sync_audit import run_sync_audit
from skyfleet.secrets import SecretBox

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-bench")
CALLER = service.Caller(user_id="bench", user_name="bench", project_id=None, project_name=None, is_admin=True,
                        real_user=False)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def cpu() -> float:
    return time.process_time()


def seed_db(factory: sessionmaker[Session], refs: list[operations.SiteRef], names: list[str],
            owners: dict[str, str]) -> None:
    """The keypairs declared and in sync on every site, as a finished declaration leaves them."""
    now = utcnow()
    with transaction(factory) as session:
        ids = []
        for name in names:
            resource = service.create(session, kind="keypair", data=ResourceCreate(spec={}),
                                      spec={"name": name, "public_key": PUBLIC_KEY}, caller=CALLER, now=now)
            ids.append(resource.id)
        session.flush()
        op, task_of = operations.submit_tasks(session, kind="sync.keypair", payloads=[(r, {}) for r in refs],
                                              summary={}, user_id=None, project_id=None, now=now)
        for ref in refs:
            session.execute(update(Task).where(Task.id == task_of[ref.id]).values(
                state="succeeded", finished_at=now, attempts=1,
                result={"status": "in-sync", "remote_id": "", "created": True, "user_id": owners[ref.name]}))
        op.state, op.finished_at = "succeeded", now
        rows = [{"resource_id": rid, "site_id": ref.id, "site_name": ref.name, "task_id": task_of[ref.id],
                 "action": "ensure", "remote_id": name, "owned": True, "status": "in-sync", "last_error": None,
                 "generation": 1, "updated_at": now} for rid, name in zip(ids, names, strict=True) for ref in refs]
        for start in range(0, len(rows), 5000):
            session.execute(insert(table_of(SyncBinding)), rows[start:start + 5000])


class Sim:
    """The simulator's admin API."""

    def __init__(self, clouds: dict[str, Any]) -> None:
        url = urlsplit(next(iter(clouds.values()))["auth"]["auth_url"])
        self.http = httpx.Client(base_url=f"{url.scheme}://{url.netloc}", timeout=120)

    def seed(self, names: list[str]) -> dict[str, str]:
        answer = self.http.post("/_sim/keypairs", json={"names": names, "public_key": PUBLIC_KEY})
        answer.raise_for_status()
        return dict(answer.json()["sites"])

    def requests(self) -> int:
        return sum(site["requests"] for site in self.http.get("/_sim/sites").json()["sites"])

    def calls(self, site: str) -> Counter[str]:
        rows = self.http.get(f"/_sim/sites/{site}/counters").json()["counters"]
        return Counter({f"{r['method']} {r['path']}": int(r["count"]) for r in rows})

    def delete(self, site: str, name: str) -> None:
        self.http.delete(f"/_sim/sites/{site}/keypairs/{name}").raise_for_status()

    def holding(self, name: str) -> int:
        return int(self.http.get("/_sim/resources", params={"kind": "keypairs", "name": name}).json()["holding"])


def kind_of(call: str) -> str:
    path = call.split(" ", 1)[1]
    for key, kind in (("/identity", "identity (tokens)"), ("os-keypairs", "keypairs"), ("flavors", "flavors"),
                      ("security-group", "security groups")):
        if key in path:
            return kind
    return "other"


def by_kind(calls: Counter[str]) -> str:
    kinds: Counter[str] = Counter()
    for call, n in calls.items():
        kinds[kind_of(call)] += n
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"


def legacy(sim: Sim, clouds: dict[str, Any], names: list[str], owners: dict[str, str], args: argparse.Namespace,
           workdir: Path) -> None:
    """Today's per-resource audit on --legacy-sites sites: one task per binding, each reading its site."""
    url = f"sqlite:///{workdir / 'legacy.db'}"
    migrate.upgrade(url)
    factory = make_session_factory(make_engine(url))
    box = SecretBox([KEY])
    subset = dict(list(clouds.items())[:args.legacy_sites])
    refs = register(factory, box, subset)
    seed_db(factory, refs, names, owners)
    pool = WorkerPool(Engine(factory, box=box, config=engine_config(Settings(auth_mode="noauth"))),
                      concurrency=args.concurrency, poll_interval=0.2)
    pool.start()
    before = {name: sim.calls(name) for name in subset}
    cpu0, started = cpu(), time.monotonic()
    started_ops = run_sync_audit(factory)
    pool.wake()
    with transaction(factory) as session:
        total = session.query(Task).filter(Task.state.in_(("pending", "running"))).count()
    while True:
        with transaction(factory) as session:
            open_ = session.query(Task).filter(Task.state.in_(("pending", "running"))).count()
        if open_ == 0:
            break
        time.sleep(0.5)
    seconds, used = time.monotonic() - started, cpu() - cpu0
    pool.stop()
    calls = sum((sim.calls(name) - before[name] for name in subset), Counter())
    per_site = Counter({k: v / len(subset) for k, v in calls.items()})
    print(f"today's per-resource audit, {len(subset)} sites x {len(names)} keypairs: {started_ops} operations, "
          f"{total} tasks, {seconds:.1f} s; per site per cycle: {sum(per_site.values()):.0f} calls "
          f"({by_kind(Counter({k: round(v) for k, v in per_site.items()}))}); "
          f"CPU {used / len(subset) * 1000:.0f} ms per site, {used / max(sum(calls.values()), 1) * 1000:.2f} ms "
          f"per site call", flush=True)


def one_cycle(label: str, sim: Sim, scan: Any, sites: list[str], sampled: list[str]) -> None:
    before = {name: sim.calls(name) for name in sampled}
    calls0, cpu0 = sim.requests(), cpu()
    report = scan()
    used, calls = cpu() - cpu0, sim.requests() - calls0
    sample = sum((sim.calls(name) - before[name] for name in sampled), Counter())
    print(f"drift audit, {label}: {report.seconds:.1f} s for {report.sites} sites ({report.compared} bindings "
          f"compared, {report.drifted} drifted, {report.failed} failed); {calls / len(sites):.2f} calls per site "
          f"(sampled sites: {by_kind(sample)} over {len(sampled)}); CPU {used:.2f} s = {used / len(sites) * 1000:.2f} "
          f"ms per site, {used / max(calls, 1) * 1000:.2f} ms per site call", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def drifting(sim: Sim, scan: Any, wake: Any, sites: list[str], names: list[str], args: argparse.Namespace) -> None:
    """The audit every --interval s for --cycles intervals while keypairs are deleted behind its back."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            began = time.monotonic()
            scan(wake)
            stop.wait(max(0.0, args.interval - (time.monotonic() - began)))

    window = args.interval * args.cycles
    rng = random.Random(7)
    plan = sorted((rng.uniform(0, window - args.interval), rng.choice(sites), name)
                  for name in rng.sample(names, args.drifts))  # the last interval is left for the last repairs
    sampled = sites[:3]
    before = {name: sim.calls(name) for name in sampled}
    calls0, cpu0, started = sim.requests(), cpu(), time.monotonic()
    thread = threading.Thread(target=loop, name="drift-audit", daemon=True)
    thread.start()
    deleted: dict[str, float] = {}
    repaired: dict[str, float] = {}
    pending = list(plan)
    while time.monotonic() - started < window + args.interval and len(repaired) < len(plan):
        now = time.monotonic() - started
        while pending and pending[0][0] <= now:
            _, site, name = pending.pop(0)
            sim.delete(site, name)
            deleted[name] = time.monotonic()
        for name in [n for n in deleted if n not in repaired]:
            if sim.holding(name) == len(sites):
                repaired[name] = time.monotonic()
        time.sleep(0.25)
    minutes = (time.monotonic() - started) / 60
    stop.set()
    used, calls = cpu() - cpu0, sim.requests() - calls0
    sample = sum((sim.calls(name) - before[name] for name in sampled), Counter())
    thread.join(args.interval * 2)
    times = [repaired[n] - deleted[n] for n in repaired]
    missing = len(plan) - len(times)
    if times:
        print(f"drift repair time (simulator's view, from the behind-the-back delete), {len(times)} of {len(plan)} "
              f"keypairs: p50 {pct(times, 0.5):.1f} s  p99 {pct(times, 0.99):.1f} s  max {max(times):.1f} s  "
              f"(mean {statistics.mean(times):.1f} s)" + (f"; {missing} not repaired in time" if missing else ""),
              flush=True)
    else:
        print(f"drift repair time: none of {len(plan)} repaired in time", flush=True)
    per_minute = Counter({kind_of(k): 0 for k in sample})
    for call, n in sample.items():
        per_minute[kind_of(call)] += n
    shown = ", ".join(f"{k} {n / len(sampled) / minutes:.2f}" for k, n in sorted(per_minute.items()))
    print(f"steady load over {minutes:.1f} min: {calls / len(sites) / minutes:.2f} calls per site per minute, all "
          f"kinds (sampled sites, per site per minute: {shown}); CPU {used:.1f} s = "
          f"{used / max(calls, 1) * 1000:.2f} ms per site call", flush=True)


def main(args: argparse.Namespace, workdir: Path) -> None:
    print(f"{load()} at the start", flush=True)
    sim_proc, clouds = start_simulator(args.sites, args.latency_ms, workdir)
    try:
        sim = Sim(clouds)
        names = [f"drift-{i:03d}" for i in range(args.resources)]
        owners = sim.seed(names)
        print(f"{args.sites} simulated sites ({args.latency_ms:.0f} ms latency per request), {args.resources} "
              f"keypairs declared and in sync on each ({args.sites * args.resources} bindings); audit every "
              f"{args.interval:.0f} s", flush=True)
        if args.legacy_sites:
            legacy(sim, clouds, names, owners, args, workdir)
        url = f"sqlite:///{workdir / 'drift.db'}"
        migrate.upgrade(url)
        factory = make_session_factory(make_engine(url))
        box = SecretBox([KEY])
        refs = register(factory, box, clouds)
        seed_db(factory, refs, names, owners)
        settings = Settings(auth_mode="noauth")
        lanes, site_pool = Lanes(background_floor=settings.background_floor), SitePool()
        pool = WorkerPool(Engine(factory, box=box, config=engine_config(settings), pool=site_pool),
                          concurrency=args.concurrency, poll_interval=1.0, lanes=lanes)
        pool.start()

        def scan(wake: Any = None) -> Any:
            return scan_fleet(factory, box=box, concurrency=settings.sync_audit_concurrency,
                              timeout=settings.site_timeout, pool=site_pool, lanes=lanes, wake=wake)

        sites = list(clouds)
        one_cycle("cold (first token per site)", sim, scan, sites, sites[:3])
        one_cycle("warm, nothing drifted", sim, scan, sites, sites[:3])
        drifting(sim, scan, pool.wake, sites, names, args)
        pool.stop()
        print(f"{load()} at the end", flush=True)
    finally:
        sim_proc.terminate()
        sim_proc.wait(30)
