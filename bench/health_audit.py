"""Benchmark: health audit cycles over 1,000 and 10,000 simulated sites with injected latency, against
the same probe done by a sequential openstacksdk loop.

    .venv/bin/python bench/health_audit.py [--sizes 1000,10000] [--latency-ms 50] [--concurrency 256]
                                           [--cycles 3] [--full-every 10]

The simulator runs in its own process (as a real fleet would be elsewhere), on the same cores;
Skyfleet's audit runs in this process on a fresh SQLite database, ``--cycles`` cycles in a row in one
runtime: the first logs in to every site and probes it fully, the next ones reuse the tokens and make
one cheap call per unchanged site (a full probe every ``--full-every`` cycles, staggered); then
``--restart-cycles`` cycles in a new runtime on the same database, as after a restart of the controller
(a login and the cheap call per site recorded online, its full probe on its turn). Per cycle:
wall time, sites/s, sites checked by a cheap call, site calls (counted by the simulator), this
process's CPU per site call, RSS and peak RSS, this process's CPU seconds and the simulator's (its
processes together: it answers on the same cores), and the load average.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from fanout import start_simulator

from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteAuth, SiteCreate


def auth_of(cloud: dict[str, Any]) -> dict[str, Any]:
    auth = dict(cloud["auth"])
    auth.update(region_name=cloud.get("region_name"), interface=cloud.get("interface", "public"))
    return auth


def audit_shard(data_dir: str, concurrency: int, shard: tuple[int, int] | None) -> int:
    """One process's part of the cycle (a separate process per shard, as separate workers would)."""
    settings = Settings(data_dir=Path(data_dir), auth_mode="noauth", audit_concurrency=concurrency,
                        site_timeout=30)
    runtime = build_runtime(settings)
    report: Any = runtime.audit_now(shard)
    runtime.close()
    return int(report.reachable)


def register(clouds: dict[str, Any], workdir: Path) -> Path:
    data_dir = workdir / f"db-{len(clouds)}"
    runtime = build_runtime(Settings(data_dir=data_dir, auth_mode="noauth"))
    with transaction(runtime.factory) as session:
        for name, cloud in clouds.items():
            data = SiteCreate(name=name, auth=SiteAuth.model_validate(auth_of(cloud)))
            sites.create_site(session, box=runtime.box, data=data)
    runtime.close()
    return data_dir


def skyfleet_audit(clouds: dict[str, Any], concurrency: int, workdir: Path, processes: int) -> dict[str, Any]:
    """One cycle split over ``processes`` shard processes (each its own runtime: a cold cycle)."""
    data_dir = register(clouds, workdir)
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        reachable = sum(pool.starmap(audit_shard, [(str(data_dir), concurrency, (i, processes))
                                                   for i in range(processes)]))
    return {"wall_s": time.monotonic() - started, "reachable": reachable}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` and its children."""
    total = 0.0
    for one in [process, *process.children(recursive=True)]:
        try:
            times = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def sim_requests(base_url: str) -> int:
    """Requests the simulator has answered so far, all sites together."""
    return sum(site["requests"] for site in httpx.get(f"{base_url}/_sim/sites", timeout=60).json()["sites"])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def audit_cycles(clouds: dict[str, Any], concurrency: int, workdir: Path, cycles: int, full_every: int,
                 base_url: str, me: psutil.Process, sim: psutil.Process, restart_cycles: int) -> None:
    """``cycles`` audits in one runtime (one process), one row each; then ``restart_cycles`` in a new
    runtime on the same database, as a restarted controller runs them (no memory of tokens or probes)."""
    data_dir = register(clouds, workdir)
    settings = Settings(data_dir=data_dir, auth_mode="noauth", audit_concurrency=concurrency, site_timeout=30,
                        audit_full_every=full_every)
    for label, count in (("cycle", cycles), ("restarted, cycle", restart_cycles)):
        runtime = build_runtime(settings)
        try:
            for cycle in range(1, count + 1):
                calls0, cpu0, started = sim_requests(base_url), cpu_seconds(), time.monotonic()
                sim0 = process_cpu(sim)
                report: Any = runtime.audit_now()
                wall, cpu = time.monotonic() - started, cpu_seconds() - cpu0
                sim_cpu = process_cpu(sim) - sim0
                calls = sim_requests(base_url) - calls0
                print(f"{f'skyfleet audit, {label} {cycle}':<36}{len(clouds):>7}{wall:>9.2f}"
                      f"{len(clouds) / wall:>9.1f}{report.reachable:>7}{report.cheap:>7}{calls:>8}"
                      f"{cpu * 1000 / max(calls, 1):>9.3f}{me.memory_info().rss / 2**20:>8.0f}"
                      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>8.0f}{cpu:>8.1f}{sim_cpu:>8.1f}"
                      f"  {load()}", flush=True)
        finally:
            runtime.close()


def sequential_openstacksdk(clouds: dict[str, Any]) -> dict[str, Any]:
    import openstack

    started = time.monotonic()
    ok = 0
    for cloud in clouds.values():
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **cloud)
        conn.authorize()
        for proxy in (conn.identity, conn.compute, conn.image, conn.network, conn.block_storage):
            proxy.get_endpoint_data()
        list(conn.compute.availability_zones())
        ok += 1
        conn.close()
    return {"wall_s": time.monotonic() - started, "reachable": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--sequential-sites", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1,
                        help="audit shards, one process each (one cold cycle, as before the cheap cycles)")
    parser.add_argument("--cycles", type=int, default=3, help="cycles in a row in one runtime")
    parser.add_argument("--full-every", type=int, default=10, help="SKYFLEET_AUDIT_FULL_EVERY")
    parser.add_argument("--restart-cycles", type=int, default=2,
                        help="cycles in a second runtime on the same database afterwards (a restarted controller)")
    args = parser.parse_args()
    me = psutil.Process(os.getpid())
    print(f"health audit benchmark: latency {args.latency_ms:.0f} ms per request, concurrency {args.concurrency}, "
          f"full probe every {args.full_every} cycles, {os.cpu_count()} cores; load average {load()} at the start")
    print(f"{'method':<36}{'sites':>7}{'wall s':>9}{'sites/s':>9}{'ok':>7}{'cheap':>7}{'calls':>8}{'CPU ms':>9}"
          f"{'RSS MB':>8}{'peak MB':>8}{'CPU s':>8}{'sim CPU':>8}  load average")
    print(f"{'':<36}{'':>7}{'':>9}{'':>9}{'':>7}{'':>7}{'':>8}{'/call':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in [int(s) for s in args.sizes.split(",")]:
            (workdir / f"sim-{size}").mkdir()
            proc, clouds = start_simulator(size, args.latency_ms, workdir / f"sim-{size}")
            try:
                if args.sequential_sites > 0 and size == min(int(s) for s in args.sizes.split(",")):
                    subset = dict(list(clouds.items())[: args.sequential_sites])
                    seq = sequential_openstacksdk(subset)
                    print(f"{'sequential openstacksdk':<36}{len(subset):>7}{seq['wall_s']:>9.2f}"
                          f"{len(subset) / seq['wall_s']:>9.1f}{seq['reachable']:>7}", flush=True)
                if args.processes > 1:
                    result = skyfleet_audit(clouds, args.concurrency, workdir, args.processes)
                    print(f"{f'skyfleet audit, {args.processes} procs':<36}{size:>7}{result['wall_s']:>9.2f}"
                          f"{size / result['wall_s']:>9.1f}{result['reachable']:>7}", flush=True)
                else:
                    base_url = next(iter(clouds.values()))["auth"]["auth_url"].split("/site-")[0]
                    audit_cycles(clouds, args.concurrency, workdir, args.cycles, args.full_every, base_url, me,
                                 psutil.Process(proc.pid), args.restart_cycles)
            finally:
                proc.terminate()
                proc.wait(30)
    print(f"load average {load()} at the end")


if __name__ == "__main__":
    main()
