"""Benchmark: the database side of one ``GET /metrics`` scrape on a large fleet, capped and uncapped.

    .venv/bin/python bench/metrics_scrape.py [--sites 10000] [--tasks 100000] [--projects 500] [--samples 3]
                                             [--db URL]

Fills a fresh database (SQLite in a temporary directory unless --db names an empty PostgreSQL
database) with managed sites, finished and pending tasks, projects under global quota with one usage
row per project and site of a sample, and ``--samples`` indicator samples per site and catalog name
(5 min apart, the newest a minute ago: what an audit every 5 min leaves), then times ``fleet_figures``
with the default caps (500 sites, 1000 quota series: only aggregates at this size) and with caps above
the fleet (every per-site and per-project series, among them each site's newest indicator values), and
counts the series each yields. Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from skyfleet.api.metrics import families
from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.indicators.models import IndicatorSample
from skyfleet.domains.indicators.service import SITE_NAMES
from skyfleet.domains.observe.service import fleet_figures
from skyfleet.domains.operations.models import Operation, Task
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.sites.models import Site


def fill(url: str, sites: int, tasks: int, projects: int, samples: int) -> None:
    factory = make_session_factory(make_engine(url))
    now = utcnow()
    site_ids = [str(uuid.uuid4()) for _ in range(sites)]
    with transaction(factory) as session:
        session.execute(insert(Site), [
            {"id": sid, "name": f"site-{i:05d}", "auth_public": {}, "auth_encrypted": "x", "managed": True,
             "availability": "offline" if i % 97 == 0 else "online", "latency_ms": 20.0, "capabilities": {},
             "description": "", "consecutive_failures": 0, "created_at": now, "updated_at": now}
            for i, sid in enumerate(site_ids)])
        op = str(uuid.uuid4())
        session.execute(insert(Operation), [{"id": op, "kind": "sync.keypair", "state": "running", "payload": {},
                                             "total": tasks, "created_at": now, "updated_at": now}])
        session.execute(insert(Task), [
            {"id": str(uuid.uuid4()), "operation_id": op, "site_id": site_ids[i % sites],
             "site_name": f"site-{i % sites:05d}", "kind": "sync.keypair", "payload": {},
             "state": "succeeded" if i % 10 else "pending", "attempts": 1,
             "next_attempt_at": now - timedelta(seconds=i % 600), "created_at": now, "updated_at": now}
            for i in range(tasks)])
        session.execute(insert(QuotaProject), [
            {"project_id": f"p{i:04d}", "overrides": {"cores": 100}, "weights": {}, "breached": {},
             "unmapped": {}, "created_at": now, "updated_at": now} for i in range(projects)])
        session.execute(insert(QuotaSiteState), [
            {"project_id": f"p{i:04d}", "site_id": site_ids[j], "usage": {"cores": 3}, "limits": {},
             "applied": {}, "pending": {}} for i in range(projects) for j in range(min(sites, 20))])
    ts = int(now.timestamp()) - 60
    for start in range(0, sites, 1000):  # one transaction per 1,000 sites (bounded memory)
        with transaction(factory) as session:
            session.execute(insert(IndicatorSample), [
                {"site_id": sid, "name": name, "ts": ts - 300 * k, "value": float(k)}
                for sid in site_ids[start:start + 1000] for name in SITE_NAMES for k in range(samples)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--samples", type=int, default=3, help="indicator samples per site and name")
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'metrics.db'}"
    migrate.upgrade(url)
    started = time.perf_counter()
    fill(url, args.sites, args.tasks, args.projects, args.samples)
    print(f"filled {args.sites} sites, {args.tasks} tasks, {args.projects} projects, "
          f"{args.sites * len(SITE_NAMES) * args.samples} indicator samples in "
          f"{time.perf_counter() - started:.1f} s ({url.split('://')[0]})")
    factory = make_session_factory(make_engine(url))
    big = 100 * (args.sites + args.projects)
    for label, (site_cap, quota_cap) in (("default caps", (500, 1000)), ("caps above the fleet", (big, big))):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            with transaction(factory) as session:
                figures = fleet_figures(session, now=utcnow(), site_series_max=site_cap,
                                        quota_series_max=quota_cap, indicator_window=1200)
            times.append(time.perf_counter() - started)
        series = sum(len(family.samples) for family in families(figures))
        indicator_series = len(figures.site_indicators or {})
        print(f"{label:>22}: {series:>6} series ({indicator_series} of indicators), database reading median "
              f"{sorted(times)[2] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
