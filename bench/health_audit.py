"""Benchmark: one health audit cycle over 100, 1,000 and 10,000 simulated sites with injected latency,
against the same probe done by a sequential openstacksdk loop.

    .venv/bin/python bench/health_audit.py [--sizes 100,1000,10000] [--latency-ms 50] [--concurrency 256]

The simulator runs in its own process (as a real fleet would be elsewhere); Skyfleet's audit runs
in this process on a fresh SQLite database. Prints wall time, sites/s and peak RSS of this process.
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


def skyfleet_audit(clouds: dict[str, Any], concurrency: int, workdir: Path, processes: int) -> dict[str, Any]:
    data_dir = workdir / f"db-{len(clouds)}"
    settings = Settings(data_dir=data_dir, auth_mode="noauth")
    runtime = build_runtime(settings)
    with transaction(runtime.factory) as session:
        for name, cloud in clouds.items():
            data = SiteCreate(name=name, auth=SiteAuth.model_validate(auth_of(cloud)))
            sites.create_site(session, box=runtime.box, data=data)
    runtime.close()
    started = time.monotonic()
    if processes == 1:
        reachable = audit_shard(str(data_dir), concurrency, None)
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            reachable = sum(pool.starmap(audit_shard, [(str(data_dir), concurrency, (i, processes))
                                                       for i in range(processes)]))
    return {"wall_s": time.monotonic() - started, "reachable": reachable}


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
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--sequential-sites", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1, help="audit shards, one process each")
    args = parser.parse_args()
    me = psutil.Process(os.getpid())
    print(f"health audit benchmark: latency {args.latency_ms:.0f} ms per request, "
          f"concurrency {args.concurrency}, {os.cpu_count()} cores")
    print(f"{'method':<28}{'sites':>7}{'wall s':>9}{'sites/s':>9}{'ok':>7}{'RSS MB':>8}{'peak MB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in [int(s) for s in args.sizes.split(",")]:
            (workdir / f"sim-{size}").mkdir()
            proc, clouds = start_simulator(size, args.latency_ms, workdir / f"sim-{size}")
            try:
                if size == min(int(s) for s in args.sizes.split(",")):
                    subset = dict(list(clouds.items())[: args.sequential_sites])
                    seq = sequential_openstacksdk(subset)
                    print(f"{'sequential openstacksdk':<28}{len(subset):>7}{seq['wall_s']:>9.2f}"
                          f"{len(subset) / seq['wall_s']:>9.1f}{seq['reachable']:>7}"
                          f"{me.memory_info().rss / 2**20:>8.0f}"
                          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>9.0f}")
                result = skyfleet_audit(clouds, args.concurrency, workdir, args.processes)
                label = "skyfleet audit" + (f", {args.processes} procs" if args.processes > 1 else "")
                print(f"{label:<28}{size:>7}{result['wall_s']:>9.2f}{size / result['wall_s']:>9.1f}"
                      f"{result['reachable']:>7}{me.memory_info().rss / 2**20:>8.0f}"
                      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>9.0f}", flush=True)
            finally:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
