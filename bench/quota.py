"""Benchmark: global quota rounds of many projects over many simulated sites.

    .venv/bin/python bench/quota.py [--projects 1000] [--sites 100] [--sim-procs 2] [--workers 2]
                                    [--concurrency 8] [--latency-ms 0] [--chunk 1000] [--churn 10]
                                    [--profile]

Sites run in --sim-procs simulator processes; Skyfleet uses PostgreSQL (127.0.0.1:5432) and
--workers `skyfleet worker --no-periodic` processes woken through RabbitMQ (the scale-out
deployment; the bench itself runs the rounds, no health audit or inventory refresh competes). Each
global project is mapped explicitly to one project id per site (no by-name look-ups). Phases, each
timed until its operations finish:
  1. first collection: every project read in full (3 quota documents per project and site);
  2. first rebalance: every site's limits written (up to 3 PUTs per project and site), and the
     next collection (change hints only);
  3. steady round: nothing changed, the sites are asked what changed and nothing is read;
  4. churn: --churn projects get a server on one random site each, then one round reads them and
     the next writes the limits that moved;
  5. steady round again: nothing changed since phase 4 (phase 3 still reads back phase 2's writes).
Prints wall time and site calls (counted by the simulators, split into quota reads, quota writes
and the rest); nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations.models import Operation
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.reconcile import quota as rounds
from skyfleet.reconcile.wakeup import Notifier
from skyfleet.secrets import SecretBox

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
KEY = Fernet.generate_key().decode()
BIN = Path(sys.executable).parent
PROFILE = cProfile.Profile()
PROFILING: list[bool] = []  # non-empty: profile the rounds being planned
WATCHED: list[psutil.Process] = []  # the worker and simulator processes


def start_simulators(total: int, procs: int, latency: float, workdir: Path) -> tuple[list[Any], dict[str, Any]]:
    started, clouds = [], {}
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    for i, count in enumerate(per):
        path = workdir / f"clouds{i}.yaml"
        started.append((subprocess.Popen([str(BIN / "skyfleet-sim"), "--sites", str(count), "--port", "0",
                                          "--latency-ms", str(latency), "--name-prefix", f"s{i}-",
                                          "--clouds-yaml", str(path)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))
    for _, path in started:
        deadline = time.monotonic() + 60
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("a simulator did not start")
            time.sleep(0.1)
    time.sleep(0.5)
    for _, path in started:
        clouds.update(yaml.safe_load(path.read_text())["clouds"])
    return [p for p, _ in started], clouds


def seed(factory: sessionmaker[Session], clouds: dict[str, Any], projects: int) -> None:
    box = SecretBox([KEY])
    now = utcnow()
    with transaction(factory) as session:
        for name, cloud in clouds.items():
            auth = {**cloud["auth"], "region_name": cloud["region_name"], "interface": "public"}
            site = sites.create_site(session, box=box, data=SiteCreate.model_validate({"name": name, "auth": auth}))
            site.availability = "online"
        session.flush()
        site_ids = list(session.scalars(select(Site.id)))
        session.execute(insert(QuotaProject), [
            {"project_id": f"gp-{i:05d}", "project_name": None, "domain_name": "Default", "quota_class": None,
             "mode": "hard", "policy": "proportional", "weights": {}, "breached": {}, "created_at": now,
             "updated_at": now, "overrides": {"cores": 400, "instances": 200, "ram": 819200, "volumes": 100,
                                              "network": 200, "port": 2000}} for i in range(projects)])
        session.execute(insert(ProjectMapping), [
            {"project_id": f"gp-{i:05d}", "site_id": s, "remote_project_id": f"rp-{i:05d}", "created_at": now,
             "updated_at": now} for i in range(projects) for s in site_ids])


def wait(factory: sessionmaker[Session], operation_id: str | None, timeout: float = 1800) -> str:
    deadline = time.monotonic() + timeout
    while operation_id and time.monotonic() < deadline:
        with transaction(factory) as session:
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.finished_at is not None:
                return operation.state
        time.sleep(0.1)
    return "none" if not operation_id else "timeout"


def calls_by_kind(clouds: dict[str, Any]) -> dict[str, int]:
    """Site calls since the last reset, as quota reads / quota writes / other; the counters are reset."""
    out = {"reads": 0, "writes": 0, "other": 0}
    with httpx.Client(timeout=30) as http:
        for name, cloud in clouds.items():
            base = cloud["auth"]["auth_url"].split(f"/{name}/")[0]
            for row in http.get(f"{base}/_sim/sites/{name}/counters").json()["counters"]:
                quota = "os-quota-sets/" in row["path"] or "/v2.0/quotas/" in row["path"]
                kind = ("reads" if row["method"] == "GET" else "writes") if quota else "other"
                out[kind] += int(row["count"])
            http.delete(f"{base}/_sim/sites/{name}/counters")
    return out


def one_round(factory: sessionmaker[Session], notifier: Notifier, chunk: int) -> tuple[list[str], float]:
    """Start a round and wait for every operation it started; returns their states and the plan time."""
    started = time.monotonic()
    with transaction(factory) as session:
        if PROFILING:
            PROFILE.enable()
        out = rounds.round_(session, home_auth_url="", now=utcnow(), chunk=chunk)
        PROFILE.disable()
    planned = time.monotonic() - started
    notifier.publish("bench")
    return [wait(factory, out[key]) for key in ("apply", "collect") if out[key]], planned


def cpu_seconds(procs: list[psutil.Process]) -> tuple[float, float]:
    """CPU time so far of Skyfleet (the workers and this process's planning) and of the simulators."""
    skyfleet, sims = psutil.Process().cpu_times(), 0.0
    total = skyfleet.user + skyfleet.system
    for proc in procs:
        times = proc.cpu_times()
        if "skyfleet-sim" in " ".join(proc.cmdline()):
            sims += times.user + times.system
        else:
            total += times.user + times.system
    return total, sims


def phase(label: str, factory: sessionmaker[Session], notifier: Notifier, clouds: dict[str, Any], chunk: int,
          rounds_: int = 1) -> float:
    before = cpu_seconds(WATCHED)
    started = time.monotonic()
    states: list[str] = []
    planned = 0.0
    for _ in range(rounds_):
        more, plan_seconds = one_round(factory, notifier, chunk)
        states += more
        planned += plan_seconds
    seconds = time.monotonic() - started
    calls = calls_by_kind(clouds)
    total = sum(calls.values())
    print(f"{label:<52} {seconds:>7.1f} s (plan+submit {planned:5.1f} s) {total:>7} site calls: "
          f"{calls['reads']:>6} quota reads {calls['writes']:>6} writes {calls['other']:>5} other "
          f"{total / seconds:>6.0f}/s ({', '.join(states) or 'nothing to do'})", flush=True)
    after = cpu_seconds(WATCHED)
    skyfleet, sims = after[0] - before[0], after[1] - before[1]
    print(f"{'':<52} CPU: Skyfleet {skyfleet:6.1f} s ({1000 * skyfleet / max(total, 1):.2f} ms per site call), "
          f"simulators {sims:6.1f} s", flush=True)
    return seconds


def churn(clouds: dict[str, Any], projects: int, count: int) -> None:
    """``count`` projects get a 2-vCPU server on one random site each (behind Skyfleet's back)."""
    rng = random.Random(7)
    names = sorted(clouds)
    with httpx.Client(timeout=30) as http:
        for index in rng.sample(range(projects), min(count, projects)):
            name = rng.choice(names)
            base = clouds[name]["auth"]["auth_url"].split(f"/{name}/")[0]
            http.post(f"{base}/_sim/sites/{name}/servers",
                      json={"project_id": f"rp-{index:05d}", "vcpus": 2, "ram": 2048}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--sim-procs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="Print where the last rounds' planning goes")
    parser.add_argument("--churn", type=int, default=10, help="Projects whose usage changes before the last phase")
    args = parser.parse_args()
    name = f"skyfleet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sims, clouds = start_simulators(args.sites, args.sim_procs, args.latency_ms, workdir)
        try:
            migrate.upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            seed(factory, clouds, args.projects)
            env = {**os.environ, "SKYFLEET_DATABASE_URL": url, "SKYFLEET_SECRET_KEYS": KEY,
                   "SKYFLEET_BROKER_URL": BROKER, "SKYFLEET_DATA_DIR": str(workdir), "SKYFLEET_AUDIT_INTERVAL": "3600",
                   "SKYFLEET_QUOTA_INTERVAL": "3600", "SKYFLEET_ENGINE_PER_SITE": "4",
                   "SKYFLEET_ENGINE_SITE_RATE": "1000", "SKYFLEET_ENGINE_SITE_BURST": "100"}
            for _ in range(args.workers):
                procs.append(subprocess.Popen([str(BIN / "skyfleet"), "worker", "--no-periodic",
                                               "--concurrency", str(args.concurrency)],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            WATCHED.extend(psutil.Process(p.pid) for p in procs + sims)
            time.sleep(4)
            calls_by_kind(clouds)
            print(f"{args.projects} projects x {args.sites} sites ({args.sim_procs} simulator processes, "
                  f"{args.latency_ms:.0f} ms latency), PostgreSQL, {args.workers} workers x {args.concurrency}, "
                  f"{args.chunk} projects per apply task, {os.cpu_count()} CPUs", flush=True)
            notifier = Notifier(BROKER)
            first = phase("1. first collection: every project read in full", factory, notifier, clouds, args.chunk)
            first += phase("2. first rebalance: write every site's limits", factory, notifier, clouds, args.chunk)
            time.sleep(1.1)  # the cursors are the sites' clocks to the second
            PROFILING.extend([True] if args.profile else [])
            phase("3. steady round: nothing changed", factory, notifier, clouds, args.chunk)
            churn(clouds, args.projects, args.churn)
            time.sleep(1.1)
            phase(f"4. churn: {args.churn} projects changed, read + rebalance", factory, notifier, clouds,
                  args.chunk, rounds_=2)
            time.sleep(1.1)
            phase("5. steady round again: nothing changed, no read-back left", factory, notifier, clouds,
                  args.chunk)
            PROFILING.clear()
            with transaction(factory) as session:
                rows = session.scalar(select(QuotaSiteState.project_id).limit(1))
            if args.profile:
                pstats.Stats(PROFILE).sort_stats("cumulative").print_stats(30)
            print(f"first full rebalance (collect + write) {first:.1f} s{'' if rows else ' (no state rows!)'}",
                  flush=True)
            notifier.close()
            engine.dispose()
        finally:
            for proc in procs + sims:
                proc.terminate()
            for proc in procs + sims:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
