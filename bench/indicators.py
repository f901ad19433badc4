"""Benchmark: indicator samples at fleet scale, on SQLite and PostgreSQL.

    .venv/bin/python bench/indicators.py [--sites 10000] [--history-sites 200] [--db sqlite|postgresql|both]

For each database (SQLite in a temporary directory; PostgreSQL in a temporary database on
127.0.0.1:5432, dropped afterwards) it prints:

- the write cost of one health audit's samples at ``--sites`` sites (14 rows a site: latency and error
  of six services, authentication time, probe duration), in the audit's batches of 200 sites a
  transaction with the sample-rate check, then the same pass again inside the sample interval (every
  site skipped: the cost of the check alone);
- the write cost of one full refresh's capacity samples (6 rows a site, read from the stored
  hypervisor rows);
- the query time (median of 5) of a 24 h series at step 5 min, for one site and name and for one site and
  all its names, over a table holding 24 h of history (one sample every 5 min) of ``--history-sites`` sites;
- the time of ``/v1/indicators/names``' count and of pruning half that history.

Numbers are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchdb import run_on  # bench/ is the script's own directory, first on sys.path
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.indicators.models import IndicatorSample
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import ProbeResult, ServiceProbe
from skyfleet.reconcile import indicators as sampling
from skyfleet.reconcile.health import BATCH

SERVICES = ("identity", "compute", "image", "network", "block-storage", "placement")
DAY, STEP = 86400, 300


def seed(factory: sessionmaker[Session], sites: int) -> list[str]:
    now = utcnow()
    ids = [str(uuid.UUID(int=n + 1)) for n in range(sites)]
    with transaction(factory) as session:
        session.execute(insert(Site), [
            {"id": sid, "name": f"site-{n:05d}", "auth_public": {}, "auth_encrypted": "x", "managed": True,
             "availability": "online", "capabilities": {}, "description": "", "consecutive_failures": 0,
             "created_at": now, "updated_at": now} for n, sid in enumerate(ids)])
        session.execute(insert(InventoryItem), [
            {"site_id": sid, "kind": "hypervisors", "remote_id": "1", "name": "hv", "status": "up", "ips": "",
             "digest": "0" * 32, "first_seen_at": now, "changed_at": now,
             "data": {"vcpus": 64, "vcpus_used": n % 64, "memory_mb": 262144, "memory_mb_used": n % 262144,
                      "local_gb": 2000, "local_gb_used": n % 2000}} for n, sid in enumerate(ids)])
    return ids


def probe(n: int) -> ProbeResult:
    return ProbeResult(reachable=True, latency_ms=20.0 + n % 7, services=[
        ServiceProbe(type=kind, endpoint="http://x", ok=n % 101 != 0, latency_ms=5.0 + n % 11) for kind in SERVICES])


def audit_pass(factory: sessionmaker[Session], ids: list[str], at: datetime) -> tuple[float, int]:
    """What run_audit adds to its batches: the sample-rate check and one insert per 200 sites."""
    started, written = time.perf_counter(), 0
    for start in range(0, len(ids), BATCH):
        probed = [sampling.Probed(sid, probe(start + i), 40.0, SERVICES)
                  for i, sid in enumerate(ids[start:start + BATCH])]
        with transaction(factory) as session:
            written += sampling.record_probes(session, probed, now=at, interval=STEP)
    return time.perf_counter() - started, written


def history(factory: sessionmaker[Session], ids: list[str], end: int) -> int:
    """24 h of samples every 5 min for each site: the 14 probe rows and the 6 capacity rows."""
    names = [*(f"api.{k}.{m}" for k in SERVICES for m in ("latency_ms", "error")), "audit.latency_ms",
             "audit.duration_ms", *(f"capacity.{k}" for k in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used",
                                                              "local_gb", "local_gb_used"))]
    rows = 0
    for sid in ids:
        batch: list[dict[str, Any]] = [{"site_id": sid, "name": name, "ts": ts, "value": float(ts % 97)}
                                       for ts in range(end - DAY, end, STEP) for name in names]
        with transaction(factory) as session:
            session.execute(insert(IndicatorSample), batch)
        rows += len(batch)
    return rows


def analyze(factory: sessionmaker[Session], label: str) -> None:
    """What autovacuum does within a minute of a bulk write on PostgreSQL: planner statistics (without
    them the sample-rate check on a fresh table is planned as a scan)."""
    if label == "postgresql":
        with transaction(factory) as session:
            session.execute(text("ANALYZE indicator_samples"))


def median_ms(call: Callable[[], object], times: int = 5) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(label: str, url: str, sites: int, history_sites: int) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    ids = seed(factory, sites)
    now = utcnow()
    seconds, rows = audit_pass(factory, ids, now)
    print(f"[{label}] one audit's samples, {sites} sites: {rows} rows in {seconds:.2f} s "
          f"({rows / seconds:,.0f} rows/s, {sites // BATCH + (sites % BATCH > 0)} transactions)")
    analyze(factory, label)
    seconds, rows = audit_pass(factory, ids, now)
    print(f"[{label}] the next audit within the sample interval: {rows} rows, {seconds:.2f} s (the check alone)")
    started = time.perf_counter()
    rows = sampling.record_capacity(factory, ids, interval=0, now=now)
    print(f"[{label}] one full refresh's capacity samples, {sites} sites: {rows} rows in "
          f"{time.perf_counter() - started:.2f} s")

    end = int(now.timestamp()) - DAY  # history before the audits above, so the prune below keeps them
    started = time.perf_counter()
    rows = history(factory, ids[:history_sites], end)
    with transaction(factory) as session:
        total = session.scalar(select(func.count()).select_from(IndicatorSample))
    print(f"[{label}] history: {rows} rows ({history_sites} sites x 24 h) in {time.perf_counter() - started:.1f} s; "
          f"table {total} rows")
    analyze(factory, label)
    if label == "postgresql":
        with transaction(factory) as session:
            size = session.scalar(text("SELECT pg_total_relation_size('indicator_samples')")) or 0
        print(f"[{label}] table with its indexes: {size / 2**20:.0f} MiB, {size / max(total or 1, 1):.0f} bytes a row")
    site = ids[history_sites // 2]

    def query(names: tuple[str, ...]) -> int:
        with transaction(factory) as session:
            found = indicators.series(session, query=indicators.SeriesQuery(
                since=end - DAY, until=end, step=STEP, site_ids=(site,), names=names))
        return sum(len(s.points) for s in found)

    for names in (("capacity.vcpus",), ()):
        points = query(names)
        print(f"[{label}] 24 h at step 5 min, one site, {'one name' if names else 'every name'}: {points} points, "
              f"{median_ms(lambda n=names: query(n)):.1f} ms (median of 5)")  # type: ignore[misc]

    def names_count() -> None:
        with transaction(factory) as session:
            indicators.names(session, since=int(now.timestamp()) - 3600)

    print(f"[{label}] names of the last hour (after the audit above): {median_ms(names_count):.1f} ms")
    started = time.perf_counter()
    deleted = sampling.prune(factory, retention=DAY + DAY // 2, now=datetime.fromtimestamp(int(now.timestamp()), UTC))
    print(f"[{label}] prune of half the history: {deleted} rows in {time.perf_counter() - started:.2f} s")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--history-sites", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"indicator benchmark: {args.sites} sites, history of {args.history_sites}, {os.cpu_count()} cores")
    run_on(args.db, lambda label, url: run(label, url, args.sites, args.history_sites))

if __name__ == "__main__":
    main()
