"""The health audit: probe every managed site concurrently (bounded) and record what was seen.

One slow or dead site costs one worker slot for at most the site timeout; the others go on.
Results are written in batches so a 10,000-site audit is not 10,000 transactions.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import ProbeResult
from skyfleet.drivers.openstack.probe import probe_site
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
Prober = Callable[[dict[str, Any]], ProbeResult]
BATCH = 200


@dataclass
class AuditReport:
    sites: int = 0
    reachable: int = 0
    unreachable: int = 0
    transitions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def observation(result: ProbeResult) -> sites.HealthObservation:
    return sites.HealthObservation(
        reachable=result.reachable, failed_services=result.failed_services,
        capabilities=result.capabilities() if result.reachable else None,
        latency_ms=result.latency_ms, error=result.error,
    )


def _apply(factory: sessionmaker[Session], batch: list[tuple[str, ProbeResult]], offline_after: int,
           report: AuditReport) -> None:
    now = utcnow()
    with transaction(factory) as session:
        rows = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_([i for i, _ in batch])))}
        for site_id, result in batch:
            site = rows.get(site_id)
            if site is None:  # deleted while being probed
                continue
            changed = sites.record_health(session, site=site, seen=observation(result),
                                          offline_after=offline_after, now=now)
            if changed:
                report.transitions[site.name] = changed
                log.info("site %s is now %s", site.name, changed)


def in_shard(site_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``site_id`` belongs to shard (index, count); a stable hash, the same in every process."""
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(site_id.encode()) % count == index


def run_audit(
    factory: sessionmaker[Session], *, box: SecretBox, concurrency: int, timeout: float,
    offline_after: int, prober: Prober | None = None, shard: tuple[int, int] | None = None,
) -> AuditReport:
    """One audit cycle over every managed site (or over one shard of them)."""
    probe: Prober = prober or (lambda auth: probe_site(auth, timeout=timeout))
    started = time.monotonic()
    with transaction(factory) as session:
        targets = [(s.id, s.name, s.auth_encrypted) for s in session.execute(
            select(Site.id, Site.name, Site.auth_encrypted).where(Site.managed.is_(True)))
            if in_shard(s.id, shard)]
    report = AuditReport(sites=len(targets))
    if not targets:
        return report
    batch: list[tuple[str, ProbeResult]] = []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(targets)),
                            thread_name_prefix="audit") as pool:
        futures: dict[Future[ProbeResult], str] = {}
        for site_id, _name, encrypted in targets:
            auth = box.decrypt(encrypted)
            futures[pool.submit(probe, auth)] = site_id
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # a bug in one probe must not stop the audit
                log.exception("probe of site %s crashed", futures[future])
                result = ProbeResult(reachable=False, error=f"probe crashed: {type(exc).__name__}")
            if result.reachable:
                report.reachable += 1
            else:
                report.unreachable += 1
            batch.append((futures[future], result))
            if len(batch) >= BATCH:
                _apply(factory, batch, offline_after, report)
                batch = []
    if batch:
        _apply(factory, batch, offline_after, report)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("health audit: %d sites, %d reachable, %d unreachable, %d transitions in %.2fs",
             report.sites, report.reachable, report.unreachable, len(report.transitions), report.seconds)
    return report


def probe_and_record(
    factory: sessionmaker[Session], *, box: SecretBox, site_id: str, timeout: float, offline_after: int,
    prober: Prober | None = None,
) -> None:
    """Probe one site now (at registration) and record the result."""
    with transaction(factory) as session:
        site = session.get(Site, site_id)
        if site is None:
            return
        auth = sites.decrypt_auth(box, site)
    result = (prober or (lambda a: probe_site(a, timeout=timeout)))(auth)
    with transaction(factory) as session:
        site = session.get(Site, site_id)
        if site is None:
            return
        seen = observation(result)
        if not result.reachable:
            # A site that cannot be reached at registration stays unknown, with the reason.
            site.last_error = seen.error
            site.last_audit_at = utcnow()
            site.latency_ms = seen.latency_ms
            return
        sites.record_health(session, site=site, seen=seen, offline_after=offline_after, now=utcnow())
