"""Benchmark: the reconcile engine fanning one read-only task (site.probe) out to many simulated sites.

    .venv/bin/python bench/fanout.py [--sites 1000] [--latency-ms 50] [--concurrency 128]
                                     [--workers 2] [--sequential-sites 100] [--no-distributed]

Embedded: SQLite and the in-process worker pool (what `skyfleet serve` runs). Distributed:
PostgreSQL (127.0.0.1:5432) and N `skyfleet worker` processes woken through RabbitMQ. Naive: a
sequential openstacksdk loop (connect + the same call) over --sequential-sites sites. The simulator
runs in its own process. Each engine figure is for a cold run (authenticate + one call per site)
and a warm one (tokens cached). Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import openstack
import psycopg
import yaml
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import Operation
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.runner import engine_config
from skyfleet.reconcile.wakeup import Notifier
from skyfleet.secrets import SecretBox

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
KEY = Fernet.generate_key().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(count: int, latency_ms: float, workdir: Path,
                    extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    clouds = workdir / "clouds.yaml"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "skyfleet-sim"), "--sites", str(count), "--port",
                             str(free_port()), "--latency-ms", str(latency_ms), "--clouds-yaml", str(clouds),
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not clouds.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited with code {proc.returncode} before it wrote {clouds}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the simulator did not start within 60 s")
        time.sleep(0.1)
    time.sleep(0.3)
    return proc, yaml.safe_load(clouds.read_text())["clouds"]


def register(factory: sessionmaker[Session], box: SecretBox, clouds: dict[str, Any]) -> list[operations.SiteRef]:
    refs = []
    with transaction(factory) as session:
        for name, cloud in clouds.items():
            auth = {**cloud["auth"], "region_name": cloud["region_name"], "interface": "public"}
            site = sites.create_site(session, box=box, data=SiteCreate.model_validate({"name": name, "auth": auth}))
            site.availability = "online"
            refs.append(operations.SiteRef(site.id, site.name))
    return refs


def submit(factory: sessionmaker[Session], refs: list[operations.SiteRef]) -> str:
    with transaction(factory) as session:
        return operations.submit(session, kind="site.probe", targets=refs, payload={}, user_id="bench",
                                 project_id=None, now=utcnow()).id


def wait_done(factory: sessionmaker[Session], operation_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(factory) as session:
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.finished_at is not None:
                return operation.state
        time.sleep(0.05)
    return "timeout"


def report(label: str, count: int, seconds: float, state: str) -> None:
    print(f"{label:<44} {count:>6} sites {seconds:>8.2f} s {count / seconds:>9.1f} tasks/s  ({state})", flush=True)


def embedded(clouds: dict[str, Any], concurrency: int, workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'embedded.db'}"
    migrate.upgrade(url)
    factory = make_session_factory(make_engine(url))
    box = SecretBox([KEY])
    refs = register(factory, box, clouds)
    settings = Settings(auth_mode="noauth", engine_per_site=2, engine_concurrency=concurrency)
    pool = WorkerPool(Engine(factory, box=box, config=engine_config(settings)), concurrency=concurrency,
                      poll_interval=1.0, batch=settings.engine_batch)
    pool.start()
    for run in ("cold", "warm"):
        started = time.monotonic()
        operation_id = submit(factory, refs)
        pool.wake()
        state = wait_done(factory, operation_id)
        report(f"embedded, SQLite, {concurrency} threads ({run})", len(refs), time.monotonic() - started, state)
    pool.stop()


def distributed(clouds: dict[str, Any], workers: int, concurrency: int, workdir: Path) -> None:
    name = f"skyfleet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        refs = register(factory, SecretBox([KEY]), clouds)
        env = {**os.environ, "SKYFLEET_DATABASE_URL": url, "SKYFLEET_SECRET_KEYS": KEY, "SKYFLEET_BROKER_URL": BROKER,
               "SKYFLEET_DATA_DIR": str(workdir), "SKYFLEET_AUDIT_INTERVAL": "3600"}
        for _ in range(workers):
            # --no-periodic: measure the fan-out alone, not the inventory/quota/audit jobs a fresh fleet starts
            procs.append(subprocess.Popen([str(Path(sys.executable).parent / "skyfleet"), "worker", "--no-periodic",
                                           "--concurrency", str(concurrency)], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        time.sleep(4)  # workers start, migrate (no-op) and bind their wake-up queues
        notifier = Notifier(BROKER)
        for run in ("cold", "warm"):
            started = time.monotonic()
            operation_id = submit(factory, refs)
            notifier.publish("bench")
            state = wait_done(factory, operation_id)
            report(f"distributed, PostgreSQL, {workers} workers x {concurrency} ({run})", len(refs),
                   time.monotonic() - started, state)
        notifier.close()
        engine.dispose()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sequential(clouds: dict[str, Any], count: int) -> None:
    names = list(clouds)[:count]
    started = time.monotonic()
    for name in names:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **clouds[name])
        conn.session.get_endpoint_data(service_type="compute", interface="public",
                                       region_name=clouds[name]["region_name"], discover_versions=True)
        conn.close()
    report("sequential openstacksdk loop", len(names), time.monotonic() - started, "done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sequential-sites", type=int, default=100)
    parser.add_argument("--no-distributed", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.sites, args.latency_ms, workdir)
        try:
            print(f"{args.sites} simulated sites, {args.latency_ms:.0f} ms latency per request, "
                  f"{os.cpu_count()} CPUs", flush=True)
            embedded(clouds, args.concurrency, workdir)
            if not args.no_distributed:
                distributed(clouds, args.workers, args.concurrency // args.workers, workdir)
            sequential(clouds, args.sequential_sites)
        finally:
            sim.terminate()
            sim.wait(30)


if __name__ == "__main__":
    main()
