"""Benchmark: one declared user (with a password) provisioned into many simulated sites' own
Keystones through the engine, and the naive way; then a fleet of users with role assignments, and a
password rotation.

    .venv/bin/python bench/identity.py [--sites 1000] [--latency-ms 50] [--concurrency 128] [--sequential-sites 100]
        [--users 100] [--roles-per-user 3] [--only-fleet | --only-rotation]

Rotation: one user with a password is brought in sync everywhere, then its password is changed (as
``PATCH`` does: re-sealed, open tasks superseded); the clock stops when every site has the new one.
Fleet run: one project, --users users with a password and --roles-per-user role assignments each
(``member``, ``reader``, ``manager`` on the project) declared at once; the clock stops when every
task of every declaration reads ``in-sync``. An assignment whose user is not in a site yet retries
with the engine's backoff, so this measures the real ordering cost. --timeout stops the wait and
prints how far it got.

Embedded deployment (SQLite, the in-process worker pool), like ``bench/sync.py``. The user is
declared as the API does (resource with the password sealed, bindings and operation in one
transaction); the clock stops when 99% and then 100% of the tasks read ``in-sync``. A second user
shows the warm figure (tokens cached). Each site's task looks up the domain and the user, creates
the user with its password (cold), or, for the warm run, the same. Naive: a sequential openstacksdk
loop (connect, find the user, create it with its password) over --sequential-sites sites. Numbers
are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openstack
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from fanout import KEY, register, start_simulator
from sync import CALLER, check_bindings, in_sync

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.identity import service as identity
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sync import service
from skyfleet.domains.sync.converge import converge
from skyfleet.domains.sync.models import SyncResource
from skyfleet.domains.sync.schemas import ResourceCreate
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.runner import engine_config
from skyfleet.secrets import SecretBox

PASSWORD = "Bench-user-pass-1"


def declare(factory: Any, box: SecretBox, name: str) -> str:
    with transaction(factory) as session:
        resource = service.create(session, kind="user", data=ResourceCreate(spec={}),
                                  spec={"name": name, "domain": "Default", "description": "", "enabled": True,
                                        "email": None, "default_project": None, "groups": []},
                                  caller=CALLER, now=utcnow())
        identity.seal_password(resource, box, PASSWORD)
        converge(session, resource, now=utcnow())
        return resource.id


def engine_run(factory: Any, box: SecretBox, pool: WorkerPool, name: str, label: str, timeout: float = 600) -> None:
    started = time.monotonic()
    resource_id = declare(factory, box, name)
    pool.wake()
    t99 = None
    done, total = 0, 0
    while time.monotonic() - started < timeout:
        done, total = in_sync(factory, resource_id)
        elapsed = time.monotonic() - started
        if t99 is None and done >= 0.99 * total:
            t99 = elapsed
        if done == total:
            print(f"{label:<40} {total:>5} sites  99% in-sync {t99:>6.2f} s  100% {elapsed:>6.2f} s  "
                  f"({total / elapsed:.0f} sites/s; bindings in-sync: {check_bindings(factory, resource_id)})",
                  flush=True)
            return
        time.sleep(0.2)
    print(f"{label:<40} timeout: {done}/{total} in sync after {timeout} s", flush=True)


ROLES = ("member", "reader", "manager")


def _declare_any(factory: Any, box: SecretBox, kind: str, spec: dict[str, Any], password: str | None = None) -> str:
    with transaction(factory) as session:
        resource = service.create(session, kind=kind, data=ResourceCreate(spec={}), spec=spec, caller=CALLER,
                                  now=utcnow())
        if password is not None:
            identity.seal_password(resource, box, password)
        converge(session, resource, now=utcnow())
        return resource.id


def all_in_sync(factory: Any, resource_ids: list[str]) -> tuple[int, int]:
    """(tasks in sync, all tasks) over the current operations of the given declarations."""
    with transaction(factory) as session:
        ops = select(SyncResource.operation_id).where(SyncResource.id.in_(resource_ids))
        rows = session.execute(select(Task.state, Task.result).where(Task.operation_id.in_(ops)))
        states = [(state, (result or {}).get("status")) for state, result in rows]
        return sum(state == "succeeded" and status == "in-sync" for state, status in states), len(states)


def wait_all(factory: Any, resource_ids: list[str], label: str, started: float, timeout: float,
             poll: float = 1.0) -> None:
    t99 = None
    done, total = 0, 0
    while time.monotonic() - started < timeout:
        done, total = all_in_sync(factory, resource_ids)
        elapsed = time.monotonic() - started
        if t99 is None and total and done >= 0.99 * total:
            t99 = elapsed
        if total and done == total:
            print(f"{label:<52} {total:>7} tasks  99% {t99:>7.2f} s  100% {elapsed:>7.2f} s  "
                  f"({total / elapsed:.0f} tasks/s)", flush=True)
            return
        time.sleep(poll)
    elapsed = time.monotonic() - started
    print(f"{label:<52} stopped: {done}/{total} tasks in sync after {elapsed:.0f} s "
          f"({done / elapsed:.0f} tasks/s so far)", flush=True)


def rotation_run(factory: Any, box: SecretBox, pool: WorkerPool, sites: int, timeout: float) -> None:
    """One user in sync on every site, then its password rotated: the time until every site has it."""
    user_id = _declare_any(factory, box, "user", {"name": "bench-rot", "domain": "Default", "description": "",
                                                  "enabled": True, "email": None, "default_project": None,
                                                  "groups": []}, PASSWORD)
    pool.wake()
    wait_all(factory, [user_id], f"user with a password, {sites} sites", time.monotonic(), timeout)
    started = time.monotonic()
    with transaction(factory) as session:
        user = session.get(SyncResource, user_id)
        assert user is not None
        identity.seal_password(user, box, "Bench-rotated-pass-2")
        user.generation += 1
        converge(session, user, now=utcnow(), supersede=True)
    pool.wake()
    wait_all(factory, [user_id], f"password rotation of that user, {sites} sites", started, timeout)


def fleet_run(factory: Any, box: SecretBox, pool: WorkerPool, sites: int, users: int, roles: int,
              timeout: float) -> None:
    started = time.monotonic()
    ids = [_declare_any(factory, box, "project", {"name": "bench-proj", "domain": "Default", "description": "",
                                                  "enabled": True})]
    for n in range(users):
        name = f"bench-u{n:03d}"
        ids.append(_declare_any(factory, box, "user", {"name": name, "domain": "Default", "description": "",
                                                       "enabled": True, "email": None, "default_project": None,
                                                       "groups": []}, PASSWORD))
        for role in ROLES[:roles]:
            spec = {"user": name, "group": None, "project": "bench-proj", "role": role, "domain": "Default",
                    "inherited": False, "create_missing_roles": False}
            ids.append(_declare_any(factory, box, "role_assignment",
                                    {**spec, "name": identity.role_assignment_name(spec)}))
    pool.wake()
    print(f"declared {len(ids)} resources in {time.monotonic() - started:.1f} s", flush=True)
    wait_all(factory, ids, f"{users} users x {roles} role assignments, {sites} sites", started, timeout, poll=5.0)
    print(retried(factory, ids), flush=True)


def retried(factory: Any, resource_ids: list[str]) -> str:
    """How many tasks of each kind needed more than one attempt (an assignment whose user or project
    was not in its site yet backs off and tries again)."""
    with transaction(factory) as session:
        ops = select(SyncResource.operation_id).where(SyncResource.id.in_(resource_ids))
        rows = session.execute(select(Task.kind, Task.attempts).where(Task.operation_id.in_(ops))).all()
    kinds: dict[str, list[int]] = {}
    for kind, attempts in rows:
        kinds.setdefault(kind, [0, 0])
        kinds[kind][0] += 1
        kinds[kind][1] += int((attempts or 0) > 1)
    return "tasks with more than one attempt: " + ", ".join(f"{k} {r}/{n}" for k, (n, r) in sorted(kinds.items()))


def sequential(clouds: dict[str, Any], count: int) -> None:
    names = list(clouds)[:count]
    started = time.monotonic()
    for name in names:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **clouds[name])
        if conn.identity.find_user("bench-seq", domain_id="default") is None:
            conn.identity.create_user(name="bench-seq", password=PASSWORD, domain_id="default")
        conn.close()
    elapsed = time.monotonic() - started
    print(f"{'sequential openstacksdk loop':<40} {len(names):>5} sites  100% {elapsed:>6.2f} s  "
          f"({len(names) / elapsed:.1f} sites/s; {elapsed / len(names) * 1000:.0f} ms per site)", flush=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--sequential-sites", type=int, default=100)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--roles-per-user", type=int, default=3, choices=range(0, len(ROLES) + 1))
    parser.add_argument("--only-fleet", action="store_true", help="skip the one-user and sequential runs")
    parser.add_argument("--only-rotation", action="store_true", help="run the password rotation alone")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.sites, args.latency_ms, workdir)
        try:
            print(f"{args.sites} simulated sites, {args.latency_ms:.0f} ms latency per request, "
                  f"{os.cpu_count()} CPUs; {load()} at the start", flush=True)
            url = f"sqlite:///{workdir / 'identity.db'}"
            migrate.upgrade(url)
            factory = make_session_factory(make_engine(url))
            box = SecretBox([KEY])
            register(factory, box, clouds)
            settings = Settings(auth_mode="noauth", engine_concurrency=args.concurrency)
            pool = WorkerPool(Engine(factory, box=box, config=engine_config(settings)),
                              concurrency=args.concurrency, poll_interval=1.0, batch=settings.engine_batch)
            pool.start()
            if not (args.only_fleet or args.only_rotation):
                engine_run(factory, box, pool, "bench-cold", f"engine, SQLite, {args.concurrency} threads (cold)")
                engine_run(factory, box, pool, "bench-warm", f"engine, SQLite, {args.concurrency} threads (warm)")
            rotation_run(factory, box, pool, args.sites, args.timeout)
            if not args.only_rotation:
                fleet_run(factory, box, pool, args.sites, args.users, args.roles_per_user, args.timeout)
            print(f"{load()} at the end of the engine runs", flush=True)
            pool.stop()
            if not (args.only_fleet or args.only_rotation):
                sequential(clouds, args.sequential_sites)
        finally:
            sim.terminate()
            sim.wait(30)


if __name__ == "__main__":
    main()
