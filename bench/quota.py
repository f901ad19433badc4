"""Benchmark: a global quota rebalance of many projects over many simulated sites.

    .venv/bin/python bench/quota.py [--projects 1000] [--sites 100] [--sim-procs 4] [--workers 4]
                                    [--concurrency 64] [--latency-ms 0] [--chunk 100]

Sites run in --sim-procs simulator processes; Skyfleet uses PostgreSQL (127.0.0.1:5432) and
--workers `skyfleet worker` processes woken through RabbitMQ (the scale-out deployment). Each
global project is mapped explicitly to one project id per site (no by-name look-ups). Phases, each
timed until its operation finishes: collect (3 reads per project and site: Nova, Cinder, Neutron
usage), apply (the first rebalance writes every site's limits: up to 3 PUTs per project and site),
and a steady-state round (collect again, nothing to write). Prints wall time and site calls
(counted by the simulators); nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
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
from skyfleet.domains.schedules.models import Schedule
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
        # The workers must not start their own quota round during the measured phases.
        session.add(Schedule(name=rounds.QUOTA_ROUND, next_run_at=now + timedelta(days=1)))
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


def site_calls(clouds: dict[str, Any]) -> int:
    total = 0
    with httpx.Client(timeout=30) as http:
        for name, cloud in clouds.items():
            base = cloud["auth"]["auth_url"].split(f"/{name}/")[0]
            total += int(http.get(f"{base}/_sim/sites/{name}/counters").json()["total"])
            http.delete(f"{base}/_sim/sites/{name}/counters")
    return total


def wait(factory: sessionmaker[Session], operation_id: str | None, timeout: float = 1800) -> str:
    deadline = time.monotonic() + timeout
    while operation_id and time.monotonic() < deadline:
        with transaction(factory) as session:
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.finished_at is not None:
                return operation.state
        time.sleep(0.1)
    return "none" if not operation_id else "timeout"


def phase(label: str, factory: sessionmaker[Session], notifier: Notifier, clouds: dict[str, Any], chunk: int,
          pick: str) -> None:
    started = time.monotonic()
    with transaction(factory) as session:
        out = rounds.round_(session, home_auth_url="", now=utcnow(), chunk=chunk)
    planned = time.monotonic() - started
    notifier.publish("bench")
    state = wait(factory, out[pick])
    seconds = time.monotonic() - started
    with transaction(factory) as session:
        tasks = session.get(Operation, out[pick]).total if out[pick] else 0  # type: ignore[union-attr]
    calls = site_calls(clouds)
    print(f"{label:<44} {seconds:>8.1f} s  (plan+submit {planned:5.1f} s) {tasks:>6} tasks {calls:>8} site calls "
          f"{calls / seconds:>8.0f} calls/s  ({state})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--sim-procs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--no-steady", action="store_true", help="Stop after the first rebalance")
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
                procs.append(subprocess.Popen([str(BIN / "skyfleet"), "worker", "--concurrency", str(args.concurrency)],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(4)
            site_calls(clouds)
            print(f"{args.projects} projects x {args.sites} sites ({args.sim_procs} simulator processes, "
                  f"{args.latency_ms:.0f} ms latency), PostgreSQL, {args.workers} workers x {args.concurrency}, "
                  f"{args.chunk} projects per task, {os.cpu_count()} CPUs", flush=True)
            total = time.monotonic()
            notifier = Notifier(BROKER)
            phase("1. collect usage", factory, notifier, clouds, args.chunk, "collect")
            phase("2. first rebalance: write every site's limits", factory, notifier, clouds, args.chunk, "apply")
            first = time.monotonic() - total
            if not args.no_steady:
                phase("3. steady round: collect again, nothing to write", factory, notifier, clouds, args.chunk,
                      "collect")
            with transaction(factory) as session:
                rows = session.scalar(select(QuotaSiteState.project_id).limit(1))
            print(f"first full rebalance (collect + write) {first:.1f} s; total {time.monotonic() - total:.1f} s"
                  f"{'' if rows else ' (no state rows!)'}", flush=True)
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
