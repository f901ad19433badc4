"""Benchmark of Skyfleet's OpenStack API simulator: memory per idle site and simple requests per second.

Starts `skyfleet-sim` in a child process (so the load client does not share its interpreter), measures
its RSS with 1,000 idle sites (targets: < 500 MB), then drives it from a bounded aiohttp load client
on loopback (127.0.0.1 only, fixed concurrency and duration) with two kinds of simple requests:
GET of nova's version document and keystone token validation (target: >= 2,000 requests/s).

    .venv/bin/python bench/simulator.py [--sites 1000] [--duration 5] [--concurrency 64] [--big 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import psutil

HOST = "127.0.0.1"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base: str
    startup_s: float

    @property
    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 1e6

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def serve(sites: int) -> Served:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "skyfleet.simulator.cli", "--sites", str(sites), "--port", "0",
                             "--host", HOST], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"listening on (http://\S+)", line)
    if found is None:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return Served(proc, found.group(1), time.perf_counter() - started)


async def token(session: aiohttp.ClientSession, base: str, site: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin-secret"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    async with session.post(f"{base}/{site}/identity/v3/auth/tokens", json=body) as resp:
        await resp.read()
        return resp.headers["X-Subject-Token"]


async def warm_all(base: str, sites: list[str], concurrency: int) -> dict[str, str]:
    """Authenticate once against every site (builds each keystone lazily); returns site -> token."""
    tokens: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(site: str) -> None:
            async with gate:
                tokens[site] = await token(session, base, site)

        await asyncio.gather(*(one(s) for s in sites))
    return tokens


async def load(base: str, requests_for: Any, duration: float, concurrency: int) -> tuple[int, int, float]:
    """(ok, failed, seconds): `concurrency` workers issue requests until `duration` passes."""
    ok = failed = 0
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker(n: int) -> None:
            nonlocal ok, failed
            i = n
            while time.perf_counter() < deadline:
                url, headers = requests_for(i)
                i += concurrency
                try:
                    async with session.get(url, headers=headers) as resp:
                        await resp.read()
                        if resp.status < 400 or resp.status == 300:
                            ok += 1
                        else:
                            failed += 1
                except aiohttp.ClientError:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return ok, failed, time.perf_counter() - started


def report(label: str, result: tuple[int, int, float]) -> None:
    ok, failed, seconds = result
    print(f"  {label:<44} {ok / seconds:>8.0f} req/s  ({ok} ok, {failed} failed in {seconds:.1f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run (max 30)")
    parser.add_argument("--concurrency", type=int, default=64, help="client connections (max 256)")
    parser.add_argument("--big", type=int, default=10000, help="also measure idle RSS with this many sites (0: skip)")
    args = parser.parse_args()
    duration, concurrency = min(args.duration, 30.0), min(args.concurrency, 256)

    print(f"skyfleet simulator benchmark (python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs)")
    served = serve(args.sites)
    try:
        names = [s["name"] for s in json.loads(_get(f"{served.base}/_sim/sites"))["sites"]]
        print(f"  {args.sites} sites: started in {served.startup_s:.2f} s, idle RSS {served.rss_mb:.0f} MB")
        warm_started = time.perf_counter()
        tokens = asyncio.run(warm_all(served.base, names, concurrency))
        print(f"  after one token per site ({time.perf_counter() - warm_started:.1f} s): RSS {served.rss_mb:.0f} MB")

        def version_doc(i: int) -> tuple[str, dict[str, str]]:
            return f"{served.base}/{names[i % len(names)]}/compute/v2.1", {}

        def validate(i: int) -> tuple[str, dict[str, str]]:
            site = names[i % len(names)]
            tok = tokens[site]
            return f"{served.base}/{site}/identity/v3/auth/tokens?nocatalog", {"X-Auth-Token": tok,
                                                                                "X-Subject-Token": tok}

        print(f"load: {concurrency} connections, {duration:.0f} s each, loopback, sites round-robin")
        report("GET compute version document", asyncio.run(load(served.base, version_doc, duration, concurrency)))
        report("GET /v3/auth/tokens (validate, nocatalog)",
               asyncio.run(load(served.base, validate, duration, concurrency)))
        print(f"  RSS after load: {served.rss_mb:.0f} MB")
    finally:
        served.stop()
    if args.big:
        big = serve(args.big)
        try:
            print(f"  {args.big} sites: started in {big.startup_s:.2f} s, idle RSS {big.rss_mb:.0f} MB")
        finally:
            big.stop()
    return 0


def _get(url: str) -> str:
    async def fetch() -> str:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return await resp.text()

    return asyncio.run(fetch())


if __name__ == "__main__":
    raise SystemExit(main())
