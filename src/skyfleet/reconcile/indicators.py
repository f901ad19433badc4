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
from skyfleet.domains.quotas import service as quotas
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


QUOTA_MARK = "quota.instances.used"  # every managed project gets it: tells when the project was sampled


def quota_samples(session: Session, *, ts: int, project_ids: Collection[str] | None = None) -> list[Sample]:
    """Per project under quota and resource: usage summed over the sites that reported it (as the round's
    plan sums it), the global limit when it is not unlimited, and usage / limit when the limit is above 0.
    Two queries for every project (the projects, then their per-site usage rows), none per project."""
    chosen = quotas.managed_projects(session, list(project_ids) if project_ids is not None else None)
    if not chosen:
        return []
    classes = quotas.class_limits(session)
    states = quotas.site_states(session, project_ids=[p.project_id for p in chosen])
    out: list[Sample] = []
    for project in chosen:
        pid = project.project_id
        limits = {k: v for k, v in quotas.stacked_limits(classes, project).items() if k in indicators.QUOTA_RESOURCES}
        used = {k: 0 for k in limits}
        for state in states[pid]:
            if state.observed_at is None:
                continue
            for key, value in (state.usage or {}).items():
                if key in used and isinstance(value, int | float):
                    used[key] += int(value)
        for key in sorted(limits):
            out.append(Sample(None, f"quota.{key}.used", ts, float(used[key]), project_id=pid))
            if limits[key] >= 0:
                out.append(Sample(None, f"quota.{key}.limit", ts, float(limits[key]), project_id=pid))
            if limits[key] > 0:
                out.append(Sample(None, f"quota.{key}.ratio", ts, round(used[key] / limits[key], 6), project_id=pid))
    return out


def record_quota(session: Session, *, now: datetime, interval: float) -> int:
    """Write the quota samples of the projects not sampled within ``interval`` (the round's transaction)."""
    ts = epoch(now)
    every = [p.project_id for p in quotas.managed_projects(session)]
    due = indicators.due_projects(session, project_ids=every, name=QUOTA_MARK, now=ts, interval=interval)
    if not due:
        return 0
    return indicators.write(session, quota_samples(session, ts=ts, project_ids=sorted(due)))


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
