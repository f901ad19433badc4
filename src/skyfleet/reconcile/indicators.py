"""Indicator sampling: what the health audit and the inventory refresh already hold, kept as samples.

Why it exists: the audits overwrite each site's latest state; this module turns each pass into rows
of ``indicator_samples`` without a single extra call to a site. The health audit adds its samples to
the transaction that records a batch of probe results; the inventory refresh samples the hypervisor
totals it stored, in one transaction per batch of sites after its pass. A site sampled less than
``indicator_interval`` seconds ago gets none (the bounded sample rate), and a claimed periodic job
deletes what is older than ``indicator_retention``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.indicators.service import Sample
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.drivers.base import CAPACITY_FIELDS, ProbeResult
from skyfleet.reconcile.scheduler import PeriodicJob

log = logging.getLogger(__name__)
PRUNE_JOB = "indicator-prune"
CAPACITY_BATCH = 500  # sites sampled per transaction after an inventory refresh
PROBE_MARK = "audit.duration_ms"  # the series whose last sample tells when a site's probe was sampled
CAPACITY_MARK = "capacity.vcpus"


def epoch(at: datetime) -> int:
    return int(at.timestamp())


@dataclass(frozen=True)
class Probed:
    """One site's probe, as the health audit recorded it."""

    site_id: str
    result: ProbeResult
    duration_ms: float
    known_services: tuple[str, ...]  # service types of the site's last good probe (for an unreachable site)


def probe_samples(probed: Probed, ts: int) -> list[Sample]:
    """Per service: latency and error (0/1); per site: authentication time and probe duration.

    An unreachable site has no per-service answer: each service it had is counted failed (its Keystone
    is the way to all of them), identity alone when it never had a good probe; no latency is made up.
    """
    site_id, result = probed.site_id, probed.result
    out = [Sample(site_id, "audit.duration_ms", ts, round(probed.duration_ms, 2))]
    if result.latency_ms is not None:
        out.append(Sample(site_id, "audit.latency_ms", ts, result.latency_ms))
    if result.reachable:
        for service in result.services:
            out.append(Sample(site_id, f"api.{service.type}.error", ts, 0.0 if service.ok else 1.0))
            if service.latency_ms is not None:
                out.append(Sample(site_id, f"api.{service.type}.latency_ms", ts, service.latency_ms))
    else:
        for kind in probed.known_services or ("identity",):
            out.append(Sample(site_id, f"api.{kind}.error", ts, 1.0))
    return out


def record_probes(session: Session, probed: Sequence[Probed], *, now: datetime, interval: float) -> int:
    """Write the samples of the due sites among ``probed`` (the caller's transaction, one batch)."""
    ts = epoch(now)
    due = indicators.due_sites(session, site_ids=[p.site_id for p in probed], name=PROBE_MARK, now=ts,
                               interval=interval)
    return indicators.write(session, [s for p in probed if p.site_id in due for s in probe_samples(p, ts)])


def capacity_samples(site_id: str, totals: dict[str, int], ts: int) -> list[Sample]:
    return [Sample(site_id, f"capacity.{key}", ts, float(totals[key])) for key in CAPACITY_FIELDS]


def record_capacity(factory: sessionmaker[Session], site_ids: Collection[str], *, interval: float,
                    now: datetime | None = None) -> int:
    """Sample the stored hypervisor totals of ``site_ids`` (sites whose hypervisors were just read),
    ``CAPACITY_BATCH`` sites per transaction."""
    ts, ids, written = epoch(now or utcnow()), sorted(site_ids), 0
    for start in range(0, len(ids), CAPACITY_BATCH):
        with transaction(factory) as session:
            due = indicators.due_sites(session, site_ids=ids[start:start + CAPACITY_BATCH], name=CAPACITY_MARK,
                                       now=ts, interval=interval)
            totals = inventory_queries.capacity(session, site_ids=due) if due else {}
            written += indicators.write(session, [s for site_id, cap in sorted(totals.items())
                                                  for s in capacity_samples(site_id, cap, ts)])
    return written


def prune(factory: sessionmaker[Session], *, retention: float, now: datetime | None = None) -> int:
    """Delete the samples older than ``retention`` seconds, one bounded chunk per transaction."""
    before, deleted = epoch(now or utcnow()) - int(retention), 0
    while True:
        with transaction(factory) as session:
            count = indicators.prune(session, before=before)
        deleted += count
        if count < indicators.PRUNE_CHUNK:
            break
    if deleted:
        log.info("indicator prune: %d samples older than %d s deleted", deleted, int(retention))
    return deleted


def prune_job(settings: Settings, factory: sessionmaker[Session]) -> PeriodicJob:
    """The claimed periodic prune (one process runs it per interval, fleet-wide)."""
    return PeriodicJob(PRUNE_JOB, settings.indicator_prune_interval,
                       lambda: prune(factory, retention=settings.indicator_retention))
