"""Benchmark: one image copied from one simulated site to ten through the engine, against one copy alone
and the same copies one site after another.

    .venv/bin/python bench/images.py [--size 1024] [--targets 10] [--mbps 40] [--sequential-sites 10]
                                     [--source-cap connection|site]

--size in MiB, --mbps in MiB/s. The simulator runs in its own process (its memory is not counted)
with --digest-only-images: the source is a generated image (bytes made as they are read, hashes known
from creation) and each target's Glance keeps only the size and hashes of what it receives, so
neither side holds the image. Every link is capped by the simulator, per transfer: the source's
Glance sends each download at --mbps (slow_image_bps) and every target's Glance reads each upload at
--mbps (slow_image_upload_bps); Skyfleet's own image_source_bps and image_target_bps stay 0. With
--source-cap site the source is instead capped by Skyfleet's image_source_bps, one bucket shared by
every read of that source in the process: ten copies then share one link's worth.

Skyfleet is this process: the API (in-process client, noauth, SQLite) declares the image with mode
auto, placed on the targets, and the worker pool `skyfleet serve` starts (periodic jobs off) copies
it; the clock stops when every binding reads in-sync (each copy verified by size and checksums).
"one copy" is the same declaration placed on one target; "sequential" declares one image per target
and waits for each before the next. RSS: this process's resident memory when idle (everything
started, nothing copied) and its peak (getrusage) after each phase. Numbers are printed; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from fanout import KEY, register, start_simulator

from skyfleet.api.app import create_app
from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings

MIB = 1 << 20


def peak_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Watch:
    """Samples the simulator's resident memory while a phase runs (its peak is printed, not counted), and
    tells the CPU seconds both processes spent since the last ``cpu()``."""

    def __init__(self, sim_pid: int) -> None:
        self.sim = psutil.Process(sim_pid)
        self.me = psutil.Process()
        self.sim_peak = 0.0
        self._cpu = self._now()

    def sample(self) -> None:
        self.sim_peak = max(self.sim_peak, self.sim.memory_info().rss / MIB)

    def _now(self) -> tuple[float, float]:
        mine, sims = self.me.cpu_times(), self.sim.cpu_times()
        return mine.user + mine.system, sims.user + sims.system

    def cpu(self) -> str:
        now = self._now()
        spent = (now[0] - self._cpu[0], now[1] - self._cpu[1])
        self._cpu = now
        return f"CPU s: Skyfleet {spent[0]:.1f}, simulator {spent[1]:.1f}"


def sim_admin(base: str, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
    answer = requests.request(method, f"{base}/_sim{path}", json=body, timeout=timeout)
    answer.raise_for_status()
    return answer.json() if answer.content else None


def wait_in_sync(client: TestClient, name: str, watch: Watch, timeout: float) -> tuple[int, int, str]:
    """Poll the declared image until no binding is pending or copying: (in-sync, bindings, first error)."""
    deadline = time.monotonic() + timeout
    while True:
        bindings = client.get(f"/v1/images/{name}").json()["bindings"]
        watch.sample()
        done = [b for b in bindings if b["status"] == "in-sync"]
        failed = [b for b in bindings if b["status"] == "failed"]
        if len(done) + len(failed) == len(bindings) or time.monotonic() > deadline:
            error = (failed[0]["error"] or "failed") if failed else "" if len(done) == len(bindings) else "timeout"
            return len(done), len(bindings), error
        time.sleep(0.25)


def copy(client: TestClient, name: str, source: dict[str, str], sites: list[str], watch: Watch,
         timeout: float) -> tuple[float, int, int, str]:
    """Declare ``name`` (mode auto) placed on ``sites`` and wait until every copy is verified."""
    started = time.monotonic()
    made = client.post("/v1/images", json={"name": name, "source": source, "mode": "auto",
                                           "placement": {"sites": sites}})
    if made.status_code != 202:
        raise RuntimeError(f"declaring {name} failed: {made.status_code} {made.text}")
    done, total, error = wait_in_sync(client, name, watch, timeout)
    return time.monotonic() - started, done, total, error


def line(label: str, sites: int, seconds: float, size: int, done: int, total: int, error: str, cpu: str) -> None:
    rate = sites * size / MIB / seconds if seconds else 0.0
    status = f"{done}/{total} in-sync" + (f"; {error[:200]}" if error else "")
    print(f"{label:<34} {sites:>3} sites {seconds:>8.2f} s  {rate:>6.1f} MiB/s total  peak RSS {peak_mb():>4.0f} MB"
          f"  {cpu}  ({status})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="image size in MiB (default 1024)")
    parser.add_argument("--targets", type=int, default=10, help="target sites (default 10)")
    parser.add_argument("--mbps", type=float, default=40, help="cap of every link in MiB/s (default 40)")
    parser.add_argument("--sequential-sites", type=int, default=None,
                        help="targets copied one after another (default all; 0 skips it)")
    parser.add_argument("--source-cap", choices=("connection", "site"), default="connection",
                        help="connection: the simulator caps each download; site: Skyfleet's image_source_bps "
                             "caps all reads of the source together")
    parser.add_argument("--concurrency", type=int, default=64, help="engine worker threads (default 64)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for one phase")
    args = parser.parse_args()
    size, bps = args.size * MIB, int(args.mbps * MIB)
    sequential = args.targets if args.sequential_sites is None else min(args.sequential_sites, args.targets)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, clouds = start_simulator(args.targets + 1, 0, workdir, ("--digest-only-images",))
        try:
            base = sim_admin_base(clouds)
            names = sorted(clouds)
            source_site, targets = names[0], names[1:]
            caps = "simulator, per transfer" if args.source_cap == "connection" else \
                "targets: simulator, per upload; source: Skyfleet image_source_bps, per site"
            print(f"images: {args.size} MiB from {source_site} to {args.targets} simulated sites, every link "
                  f"{args.mbps:g} MiB/s ({caps}), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
            sim_admin(base, "PUT", f"/sites/{source_site}/faults",
                      {"slow_image_bps": bps if args.source_cap == "connection" else 0})
            for target in targets:
                sim_admin(base, "PUT", f"/sites/{target}/faults", {"slow_image_upload_bps": bps})
            started = time.monotonic()
            image = sim_admin(base, "POST", f"/sites/{source_site}/images", {"size": size, "name": "bench-source"})
            print(f"source image generated and hashed by the simulator in {time.monotonic() - started:.1f} s "
                  f"(md5 {image['checksum']})", flush=True)
            settings = Settings(data_dir=workdir, auth_mode="noauth", noauth_allowed_hosts="testserver",
                                secret_keys=KEY, periodic_jobs=False, engine_concurrency=args.concurrency,
                                image_source_bps=bps if args.source_cap == "site" else 0)
            runtime = build_runtime(settings)
            register(runtime.factory, runtime.box, clouds)
            watch = Watch(sim.pid)
            with TestClient(create_app(runtime, start_workers=True)) as client:
                client.get("/v1/images")  # the API's first request has run: now it is idle
                idle = psutil.Process().memory_info().rss / MIB
                watch.sample()
                print(f"Skyfleet idle: RSS {idle:.0f} MB (peak so far {peak_mb():.0f} MB); simulator RSS "
                      f"{watch.sim_peak:.0f} MB", flush=True)
                source = {"site": source_site, "image_id": image["id"]}
                watch.cpu()
                one = copy(client, "bench-one", source, targets[:1], watch, args.timeout)
                line("one copy (engine)", 1, one[0], size, *one[1:], watch.cpu())
                fleet = copy(client, "bench-fleet", source, targets, watch, args.timeout)
                line(f"{args.targets} copies at once (engine)", args.targets, fleet[0], size, *fleet[1:], watch.cpu())
                print(f"  ratio {args.targets} sites / one copy: {fleet[0] / one[0]:.2f}x (target <= 1.5x)", flush=True)
                growth = peak_mb() - idle
                print(f"  Skyfleet RSS growth over idle: {growth:.0f} MB (peak {peak_mb():.0f} MB; target <= 100 MB)",
                      flush=True)
                if sequential:
                    total, done, bindings, errors = 0.0, 0, 0, []
                    for n, target in enumerate(targets[:sequential]):
                        seconds, ok, count, error = copy(client, f"bench-seq-{n}", source, [target], watch,
                                                         args.timeout)
                        total, done, bindings = total + seconds, done + ok, bindings + count
                        errors += [error] if error else []
                    line("sequential, one site after another", sequential, total, size, done, bindings,
                         errors[0] if errors else "", watch.cpu())
                    print(f"  sequential / {args.targets} at once: {total / fleet[0] * args.targets / sequential:.1f}x"
                          f"{'' if sequential == args.targets else ' (extrapolated to all targets)'}", flush=True)
            print(f"Skyfleet peak RSS {peak_mb():.0f} MB, growth over idle {peak_mb() - idle:.0f} MB; simulator "
                  f"peak RSS {watch.sim_peak:.0f} MB (separate process, not counted)", flush=True)
            runtime.close()
        finally:
            sim.terminate()
            sim.wait(30)


def sim_admin_base(clouds: dict[str, Any]) -> str:
    """The simulator's base URL, from any site's auth URL (http://host:port/<site>/identity/v3)."""
    auth_url = str(next(iter(clouds.values()))["auth"]["auth_url"])
    return auth_url.rsplit("/", 3)[0]


if __name__ == "__main__":
    main()
