"""Benchmark: the floor under the identity fleet target. How many Keystone requests one declared
user and one role assignment cost a site, and how many requests per second the simulator alone
serves on this machine to a bare client; from both, whether "100 users x 3 role assignments onto
1,000 sites in 60 s" is reachable here at all, whatever Skyfleet does.

    .venv/bin/python bench/identity_floor.py [--sites 200] [--latency-ms 50] [--threads 128] [--seconds 10]

1. Requests per declaration: one project, one user with a password and three role assignments
   placed on one site, converged through the engine (embedded SQLite, as bench/identity.py); the
   site's request counters (the simulator's own) are read after each step, token requests included.
2. The floor: the simulator with --sites sites and --latency-ms latency, asked ``GET
   /v3/users?name=..&domain_id=default`` (the commonest call of these tasks) round-robin over the
   sites for --seconds seconds, each site's token fetched once beforehand: by --threads threads with
   one ``requests`` session each (what Skyfleet's keystoneauth sessions do, client CPU included), and
   by one asyncio aiohttp client with as many connections (the simulator's own limit, little client
   CPU). The load average is printed: the simulator and the client share the machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests

sys.path.insert(0, str(Path(__file__).parent))
from fanout import KEY, register, start_simulator
from identity import PASSWORD, _declare_any, all_in_sync

from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.engine import make_engine, make_session_factory
from skyfleet.domains.identity import service as identity
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.runner import engine_config
from skyfleet.secrets import SecretBox


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def counters(base: str, site: str) -> dict[str, int]:
    rows = requests.get(f"{base}/_sim/sites/{site}/counters", timeout=10).json()
    rows = rows.get("counters", rows) if isinstance(rows, dict) else rows
    return {f"{r['method']} {r['path']}": int(r["count"]) for r in rows}


def total(c: dict[str, int]) -> int:
    return sum(c.values())


def per_declaration(clouds: dict[str, Any], base: str, workdir: Path) -> dict[str, int]:
    """Requests one site receives for a project, a user with a password, and a role assignment."""
    site = sorted(clouds)[0]
    url = f"sqlite:///{workdir / 'count.db'}"
    migrate.upgrade(url)
    factory = make_session_factory(make_engine(url))
    box = SecretBox([KEY])
    register(factory, box, {site: clouds[site]})
    settings = Settings(auth_mode="noauth", engine_concurrency=4)
    pool = WorkerPool(
        Engine(factory, box=box, config=engine_config(settings)),
        concurrency=4,
        poll_interval=0.2,
        batch=settings.engine_batch,
    )
    pool.start()
    out: dict[str, int] = {}
    steps: list[tuple[str, str, dict[str, Any], str | None]] = [
        ("project", "project", {"name": "floor-proj", "domain": "Default", "description": "", "enabled": True}, None),
        (
            "user with a password",
            "user",
            {
                "name": "floor-u",
                "domain": "Default",
                "description": "",
                "enabled": True,
                "email": None,
                "default_project": None,
                "groups": [],
            },
            PASSWORD,
        ),
    ]
    for role in ("member", "reader", "manager"):
        spec = {
            "user": "floor-u",
            "group": None,
            "project": "floor-proj",
            "role": role,
            "domain": "Default",
            "inherited": False,
            "create_missing_roles": False,
        }
        steps.append(
            (
                f"role assignment ({role})",
                "role_assignment",
                {**spec, "name": identity.role_assignment_name(spec)},
                None,
            )
        )
    try:
        for label, kind, spec, password in steps:
            before = counters(base, site)
            rid = _declare_any(factory, box, kind, spec, password)
            pool.wake()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and all_in_sync(factory, [rid])[0] < 1:
                time.sleep(0.1)
            after = counters(base, site)
            diff = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
            out[label] = total(diff)
            calls = ", ".join(f"{k} x{v}" for k, v in sorted(diff.items()))
            print(f"{label:<28} {total(diff):>3} requests: {calls}", flush=True)
    finally:
        pool.stop()
    return out


def tokens(clouds: dict[str, Any]) -> list[tuple[str, str]]:
    """(identity endpoint, token) of every site, fetched once."""
    out = []
    for cloud in clouds.values():
        auth = cloud["auth"]
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": auth["username"],
                            "password": auth["password"],
                            "domain": {"name": auth.get("user_domain_name", "Default")},
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": auth["project_name"],
                        "domain": {"name": auth.get("project_domain_name", "Default")},
                    }
                },
            }
        }
        url = auth["auth_url"].rstrip("/")
        url = url if url.endswith("/v3") else f"{url}/v3"
        answer = requests.post(f"{url}/auth/tokens", json=body, timeout=30)
        answer.raise_for_status()
        out.append((url, answer.headers["X-Subject-Token"]))
    return out


def floor_threads(targets: list[tuple[str, str]], threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        session = requests.Session()
        i = n
        while time.monotonic() < stop:
            url, token = targets[i % len(targets)]
            session.get(
                f"{url}/users",
                params={"name": "nobody", "domain_id": "default"},
                headers={"X-Auth-Token": token},
                timeout=30,
            ).raise_for_status()
            done[n] += 1
            i += threads

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.monotonic() - started)


async def _floor_async(targets: list[tuple[str, str]], connections: int, seconds: float) -> float:
    done = 0
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            nonlocal done
            i = n
            while time.monotonic() < stop:
                url, token = targets[i % len(targets)]
                async with session.get(
                    f"{url}/users", params={"name": "nobody", "domain_id": "default"}, headers={"X-Auth-Token": token}
                ) as answer:
                    answer.raise_for_status()
                    await answer.read()
                done += 1
                i += connections

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        return done / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--threads", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--target-sites", type=int, default=1000)
    parser.add_argument("--target-users", type=int, default=100)
    parser.add_argument("--target-roles", type=int, default=3)
    parser.add_argument("--target-seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.sites, args.latency_ms, workdir)
        base = clouds[sorted(clouds)[0]]["auth"]["auth_url"].split("/site-")[0]
        try:
            print(f"{args.sites} simulated sites, {args.latency_ms:.0f} ms latency per request; {load()}", flush=True)
            cost = per_declaration(clouds, base, workdir)
            targets = tokens(clouds)
            threaded = floor_threads(targets, args.threads, args.seconds)
            print(f"bare client, {args.threads} threads (requests): {threaded:>8.0f} requests/s; {load()}", flush=True)
            bare = asyncio.run(_floor_async(targets, args.threads, args.seconds))
            print(f"bare client, asyncio, {args.threads} connections: {bare:>8.0f} requests/s; {load()}", flush=True)
        finally:
            sim.terminate()
            sim.wait(30)
    user = cost["user with a password"]
    grant = sum(v for k, v in cost.items() if k.startswith("role assignment")) / 3
    need = args.target_sites * (cost["project"] + args.target_users * (user + args.target_roles * grant))
    rate = need / args.target_seconds
    print(
        f"target: {args.target_sites} sites x ({args.target_users} users x ({user} + {args.target_roles} x "
        f"{grant:.1f} requests) + a project's {cost['project']}) = {need:,.0f} requests; in "
        f"{args.target_seconds:.0f} s that is {rate:,.0f} requests/s",
        flush=True,
    )
    best = max(threaded, bare)
    print(
        f"at the best bare rate measured here ({best:,.0f} requests/s) the requests alone take {need / best:,.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
