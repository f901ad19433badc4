"""Benchmark: the dashboard's fleet overview at 5,000 sites, timed in headless chromium.

    .venv/bin/python bench/dashboard.py [--sites 5000] [--runs 3]

Why: the overview must stay usable with a large fleet, and only a browser says how long a user waits.
The store is seeded directly (a fresh SQLite store, noauth on loopback, no workers): ``--sites`` site
rows with groups, labels and a mix of availabilities, one hypervisor row each (the capacity bars) and an
hour of API-latency samples (the sparklines). Skyfleet serves it with uvicorn; chromium loads ``/ui/``
``--runs`` times and the Performance API gives the first contentful paint and ``skyfleet:sites-rendered``,
the mark the page sets when the site grid has drawn its data (both from navigation start). The API
time of the overview's own calls, and when every site was read (``skyfleet:sites-complete``: the
tally final), are printed too. Numbers are printed; nothing is asserted.

The e2e test ``tests/e2e/test_dashboard_scale.py`` uses :func:`seed_fleet` and :func:`overview_timings`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.indicators.models import IndicatorSample
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.sites.models import Site, SiteLabel

AVAILABILITY_MIX = ("online",) * 14 + ("degraded",) * 3 + ("offline",) * 2 + ("unknown",)
GROUPS = ("eu", "us", "ap", "sa")
LATENCY_NAME = "audit.latency_ms"
MARK = "skyfleet:sites-rendered"  # the grid's first rows drawn
COMPLETE = "skyfleet:sites-complete"  # every matching site read (the tally and the pages final)


def seed_fleet(factory: sessionmaker[Session], sites: int, *, prefix: str = "site") -> list[str]:
    """``sites`` rows named ``{prefix}-00000``...: a group each (eu, us, ap, sa in turn), labels ``tier`` (edge
    or core) and ``n`` (the site's number), one availability of ``AVAILABILITY_MIX`` in turn, a hypervisor
    row, and a sample of ``audit.latency_ms`` every 5 minutes over the last hour. Returns the names."""
    now = utcnow()
    stamp = int(time.time())
    ids = [str(uuid.uuid4()) for _ in range(sites)]
    names = [f"{prefix}-{n:05d}" for n in range(sites)]
    with transaction(factory) as session:
        session.execute(insert(Site), [
            {"id": sid, "name": names[n], "description": "", "group": GROUPS[n % len(GROUPS)], "managed": False,
             "auth_public": {"auth_url": f"https://{names[n]}.example:5000/v3"}, "auth_encrypted": "-",
             "availability": AVAILABILITY_MIX[n % len(AVAILABILITY_MIX)], "consecutive_failures": 0,
             "latency_ms": 20.0 + n % 37, "capabilities": {}, "created_at": now, "updated_at": now,
             "last_audit_at": now} for n, sid in enumerate(ids)])
        session.execute(insert(SiteLabel), [
            {"site_id": sid, "key": key, "value": value} for n, sid in enumerate(ids)
            for key, value in (("tier", "edge" if n % 3 else "core"), ("n", str(n)))])
        session.execute(insert(InventoryItem), [
            {"site_id": sid, "kind": "hypervisors", "remote_id": "1", "name": "hv", "status": "up", "ips": "",
             "digest": "0" * 32, "first_seen_at": now, "changed_at": now,
             "data": {"vcpus": 64, "vcpus_used": n % 64, "memory_mb": 262144, "memory_mb_used": (n * 977) % 262144,
                      "local_gb": 2000, "local_gb_used": n % 2000}} for n, sid in enumerate(ids)])
        session.execute(insert(IndicatorSample), [
            {"site_id": sid, "project_id": None, "name": LATENCY_NAME, "ts": stamp - 300 * k,
             "value": 20.0 + (n + k * 7) % 31} for n, sid in enumerate(ids) for k in range(12)])
    return names


# Read once the page has set its mark: milliseconds from navigation start.
TIMINGS = """
const paint = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
const mark = performance.getEntriesByName(arguments[0])[0];
const all = performance.getEntriesByName(arguments[1])[0];
const nav = performance.getEntriesByType('navigation')[0];
return {fcp: paint ? paint.startTime : null, data: mark ? mark.startTime : null, complete: all ? all.startTime : null,
        dom: nav ? nav.domContentLoadedEventEnd : null,
        rows: document.querySelectorAll('#site-grid tbody tr').length};
"""


def overview_timings(driver: Any, url: str, timeout: float = 60) -> dict[str, float]:
    """Load the overview in ``driver`` (a Selenium webdriver) and return its timings in ms and its rows."""
    driver.get("about:blank")
    driver.get(f"{url}/ui/#/overview")
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, float] = driver.execute_script(TIMINGS, MARK, COMPLETE)
        if found["data"] is not None and found["complete"] is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"the overview set no {MARK} and {COMPLETE} marks in {timeout} s: {found}")
        time.sleep(0.05)


def serve(runtime: Any) -> tuple[str, Any]:
    """Skyfleet on a free loopback port (uvicorn in a thread); returns its URL and the server."""
    import socket

    import uvicorn

    from skyfleet.api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime, start_workers=False), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("SKYFLEET_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("SKYFLEET_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def api_times(url: str) -> dict[str, float]:
    """Wall time (ms) of the overview's own API calls, one after the other as the page makes them."""
    out: dict[str, float] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        started, pages, marker = time.perf_counter(), 0, None
        while True:
            body = client.get("/v1/sites", params={"limit": 1000, **({"marker": marker} if marker else {})}).json()
            pages += 1
            marker = body["next_marker"]
            if marker is None:
                break
        out[f"GET /v1/sites ({pages} pages of 1000)"] = (time.perf_counter() - started) * 1000
        for path in ("/v1/inventory/summary", "/v1/sites?limit=1000&group=eu&selector=tier%3Dedge"):
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            out[f"GET {path}"] = (time.perf_counter() - started) * 1000
    return out


def main() -> None:
    from skyfleet.api.runtime import build_runtime
    from skyfleet.config import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="skyfleet-bench-dashboard-"))
    runtime = build_runtime(Settings(data_dir=workdir, auth_mode="noauth"))
    started = time.perf_counter()
    seed_fleet(runtime.factory, args.sites)
    print(f"dashboard benchmark: {args.sites} sites seeded in {time.perf_counter() - started:.1f} s, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    url, server = serve(runtime)
    driver = chromium()
    try:
        for name, ms in api_times(url).items():
            print(f"  {name}: {ms:.0f} ms")
        runs = [overview_timings(driver, url) for _ in range(args.runs + 1)][1:]  # the first warms the caches
        for n, t in enumerate(runs, 1):
            print(f"  run {n}: first contentful paint {t['fcp']:.0f} ms, site grid with data {t['data']:.0f} ms "
                  f"({t['rows']:.0f} rows drawn), every site read {t['complete']:.0f} ms, "
                  f"DOMContentLoaded {t['dom']:.0f} ms")
        print(f"median: first paint {statistics.median(t['fcp'] for t in runs):.0f} ms, data shown "
              f"{statistics.median(t['data'] for t in runs):.0f} ms, every site read "
              f"{statistics.median(t['complete'] for t in runs):.0f} ms; load average {os.getloadavg()[0]:.2f}")
    finally:
        driver.quit()
        server.should_exit = True
        runtime.close()


if __name__ == "__main__":
    main()
