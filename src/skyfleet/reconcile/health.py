"""The health audit: probe every managed site concurrently (bounded) and record what was seen.

One slow or dead site costs one worker slot for at most the site timeout; the others go on. Each
probe takes a background slot of the process's priority lanes, so while user-started tasks run here
the audit makes only a few probes at once (``reconcile.lanes``).
Results are written in batches so a 10,000-site audit is not 10,000 transactions. A site that comes
back online has its tasks waiting on backoff made due at once (the caller wakes the workers).
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

from skyfleet import log_context
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import leases
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import ProbeResult
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.probe import probe_site
from skyfleet.reconcile import indicators
from skyfleet.reconcile.lanes import Lanes, background_slot
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
Prober = Callable[[dict[str, Any]], ProbeResult]
BATCH = 200
ONLINE = "online"


@dataclass
class AuditReport:
    sites: int = 0
    reachable: int = 0
    unreachable: int = 0
    transitions: dict[str, str] = field(default_factory=dict)
    resumed: int = 0  # tasks made due at once because their site came back online
    seconds: float = 0.0


def observation(result: ProbeResult) -> sites.HealthObservation:
    return sites.HealthObservation(
        reachable=result.reachable, failed_services=result.failed_services,
        capabilities=result.capabilities() if result.reachable else None,
        latency_ms=result.latency_ms, error=result.error,
    )


Outcome = tuple[str, ProbeResult, float]  # site id, result, seconds the probe took


def _known_services(site: Site) -> tuple[str, ...]:
    services = (site.capabilities or {}).get("services") or []
    return tuple(str(s["type"]) for s in services if isinstance(s, dict) and s.get("type"))


def _apply(factory: sessionmaker[Session], batch: list[Outcome], offline_after: int, report: AuditReport,
           indicator_interval: float | None) -> None:
    """Record a batch of results, and their indicator samples, in one transaction."""
    now = utcnow()
    sampled: list[indicators.Probed] = []
    with transaction(factory) as session:
        rows = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_([i for i, _, _ in batch])))}
        for site_id, result, seconds in batch:
            site = rows.get(site_id)
            if site is None:  # deleted while being probed
                continue
            sampled.append(indicators.Probed(site_id, result, seconds * 1000, _known_services(site)))
            changed = sites.record_health(session, site=site, seen=observation(result),
                                          offline_after=offline_after, now=now)
            if changed:
                report.transitions[site.name] = changed
                log.info("site %s is now %s", site.name, changed, extra={"site_id": site.id})
            if changed == ONLINE:  # back: its tasks waiting on backoff are tried at once
                report.resumed += leases.due_now(session, site_id=site.id, now=now)
        if indicator_interval is not None:
            indicators.record_probes(session, sampled, now=now, interval=indicator_interval)


def _probe_logged(probe: Prober, auth: dict[str, Any], site_id: str,
                  lanes: Lanes | None = None) -> tuple[ProbeResult, float]:
    """``probe(auth)`` in a background slot, with the site's id on every log line it causes (drivers,
    keystoneauth), and the seconds the probe took (the wait for a slot left out)."""
    with background_slot(lanes), log_context.scope(site_id=site_id):
        started = time.monotonic()
        result = probe(auth)
        return result, time.monotonic() - started


def in_shard(site_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``site_id`` belongs to shard (index, count); a stable hash, the same in every process."""
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(site_id.encode()) % count == index


def run_audit(
    factory: sessionmaker[Session], *, box: SecretBox, concurrency: int, timeout: float,
    offline_after: int, prober: Prober | None = None, shard: tuple[int, int] | None = None,
    lanes: Lanes | None = None, indicator_interval: float | None = 0.0, pool: SitePool | None = None,
) -> AuditReport:
    """One audit cycle over every managed site (or over one shard of them); with ``lanes``, each probe
    waits for a background slot (no gate without).

    ``indicator_interval``: least seconds between two indicator samples of a site (0: every audit;
    None: no samples). ``pool``: the process's sessions, given each site's fresh token for its other calls.
    """
    probe: Prober = prober or (lambda auth: probe_site(auth, timeout=timeout, share=pool))
    started = time.monotonic()
    with transaction(factory) as session:
        targets = [(s.id, s.name, s.auth_encrypted) for s in session.execute(
            select(Site.id, Site.name, Site.auth_encrypted).where(Site.managed.is_(True)))
            if in_shard(s.id, shard)]
    report = AuditReport(sites=len(targets))
    if not targets:
        return report
    batch: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(targets)),
                            thread_name_prefix="audit") as probes:
        futures: dict[Future[tuple[ProbeResult, float]], str] = {}
        for site_id, _name, encrypted in targets:
            auth = box.decrypt(encrypted)
            futures[probes.submit(_probe_logged, probe, auth, site_id, lanes)] = site_id
        for future in as_completed(futures):
            try:
                result, seconds = future.result()
            except Exception as exc:  # a bug in one probe must not stop the audit
                log.exception("probe of site %s crashed", futures[future])
                result, seconds = ProbeResult(reachable=False, error=f"probe crashed: {type(exc).__name__}"), 0.0
            if result.reachable:
                report.reachable += 1
            else:
                report.unreachable += 1
            batch.append((futures[future], result, seconds))
            if len(batch) >= BATCH:
                _apply(factory, batch, offline_after, report, indicator_interval)
                batch = []
    if batch:
        _apply(factory, batch, offline_after, report, indicator_interval)
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
            site.last_error = sites.short_reason(seen.error)
            site.last_audit_at = utcnow()
            site.latency_ms = seen.latency_ms
            return
        sites.record_health(session, site=site, seen=seen, offline_after=offline_after, now=utcnow())
