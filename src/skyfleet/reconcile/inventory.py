"""The inventory audit: refresh every managed site's inventory, concurrently and bounded.

Two claimed periodic jobs drive it (see ``api.runtime``): an incremental refresh every
``inventory_interval`` seconds (Nova ``changes-since`` for servers, Cinder ``updated_at=gte:`` at
microversion 3.60 plus an id listing for volumes: a handful of calls for an unchanged site) and a full
refresh of every kind every ``inventory_full_interval`` seconds (a full diff, which also catches deletions of the kinds
without a change feed). A site never fully refreshed gets a full refresh first.

Each site is read on a bounded thread pool (one slot per site for at most the site timeout per
call) and written in its own transaction. A site that fails keeps its rows; its sync row carries
the error, and the API shows the rows as stale with their age. Each site read takes a background slot
of the process's priority lanes, so while user-started tasks run here only a few sites are read at
once (``reconcile.lanes``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import build as addresses
from skyfleet.domains.addresses import conflicts
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.inventory.models import InventorySync
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import INCREMENTAL_KINDS, Record
from skyfleet.drivers.openstack.inventory import KINDS, Reader, read_live
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError
from skyfleet.logs import SECRETS, redact
from skyfleet.reconcile import indicators
from skyfleet.reconcile.lanes import Lanes, background_slot
from skyfleet.reconcile.scheduler import PeriodicJob
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
EPOCH = "1970-01-01T00:00:00Z"
INCREMENTAL_JOB = "inventory-refresh"
FULL_JOB = "inventory-full-refresh"


@dataclass(frozen=True)
class Target:
    site: inventory.SiteRef
    auth: dict[str, Any] = field(repr=False)
    full: bool
    cursors: dict[str, str]


@dataclass
class Observed:
    """What one site read produced (no database access happens while reading)."""

    full: bool
    calls: int = 0
    complete: dict[str, list[Record]] = field(default_factory=dict)
    changed: dict[str, list[Record]] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    volume_ids: set[str] | None = None  # every volume id on the site (incremental reads)
    error: str | None = None


@dataclass
class RefreshReport:
    sites: int = 0
    full: int = 0
    failed: int = 0
    calls: int = 0
    counts: inventory.ApplyCounts = field(default_factory=inventory.ApplyCounts)
    address_sites: int = 0  # sites whose addresses or subnets changed
    conflicts: conflicts.DetectReport | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"sites": self.sites, "full": self.full, "failed": self.failed, "calls": self.calls,
                "created": self.counts.created, "updated": self.counts.updated,
                "deleted": self.counts.deleted, "unchanged": self.counts.unchanged,
                "events": self.counts.events, "address_sites": self.address_sites,
                "conflicts": self.conflicts.conflicts if self.conflicts else None, "seconds": self.seconds}


def _cursor(records: list[Record], previous: str) -> str:
    """The newest ``updated`` seen (site clock; both feeds are inclusive, so nothing is missed)."""
    return max([previous or EPOCH, *(r.updated for r in records if r.updated)])


def read_site(reader: Reader, target: Target) -> Observed:
    """Read one site: every kind (full) or the change feeds (incremental)."""
    seen = Observed(full=target.full)
    try:
        if target.full:
            for kind in KINDS:
                seen.complete[kind] = reader.full(kind)
            for kind in INCREMENTAL_KINDS:
                seen.cursors[kind] = _cursor(seen.complete[kind], "")
        else:
            since = target.cursors
            servers = reader.changed_servers(since["servers"])
            volumes, volume_ids = reader.changed_volumes(since["volumes"])
            seen.changed = {"servers": servers, "volumes": volumes}
            seen.cursors = {"servers": _cursor(servers, since["servers"]),
                            "volumes": _cursor(volumes, since["volumes"])}
            seen.volume_ids = volume_ids
    except SiteError as exc:
        seen.error = redact(exc.message)[:1000]
    except Exception as exc:  # a bug in one read must not stop the audit
        log.exception("inventory read of site %s crashed", target.site.name)
        seen.error = f"inventory read crashed: {type(exc).__name__}"
    seen.calls = reader.calls
    return seen


def store_site(session: Session, target: Target, seen: Observed, now: datetime) -> inventory.ApplyCounts:
    """Write one site's observation (the caller's transaction).

    The site's derived address rows follow in the same transaction when a kind they come from
    changed (or were never derived: a site refreshed before the address view existed);
    ``counts.addresses`` tells the caller whether conflicts must be looked for again.
    """
    counts = inventory.ApplyCounts()
    rederive = False
    # One writer per site at a time: the incremental and the full refresh may run in two processes at
    # once, and both would read "no rows yet" and insert the same ones (a unique violation, the site's
    # refresh lost). The site's row lock (PostgreSQL, MariaDB; SQLite has one writer anyway) makes the
    # second wait and then diff against what the first stored.
    session.execute(select(Site.id).where(Site.id == target.site.id).with_for_update())
    if seen.error is None:
        sync = session.get(InventorySync, target.site.id)
        emit = sync is not None and sync.full_at is not None
        for kind, records in seen.complete.items():
            applied = inventory.apply_records(session, site=target.site, kind=kind, records=records, now=now,
                                              complete=True, emit=emit)
            counts.add(applied)
            rederive |= kind in addresses.SOURCES and applied.changed
        for kind, records in seen.changed.items():
            gone: set[str] = set()
            if kind == "volumes" and seen.volume_ids is not None:
                gone = inventory.stored_ids(session, site_id=target.site.id, kind="volumes") - seen.volume_ids
            applied = inventory.apply_records(session, site=target.site, kind=kind, records=records, now=now,
                                              complete=False, gone=gone, emit=True)
            counts.add(applied)
            rederive |= kind in addresses.SOURCES and applied.changed
        rederive = rederive or (seen.full and not addresses.derived(session, site_id=target.site.id))
    if rederive:
        counts.addresses += addresses.refresh_site(session, site_id=target.site.id, now=now).written
    inventory.record_refresh(session, site_id=target.site.id, now=now, outcome=inventory.SyncUpdate(
        full=seen.full, calls=seen.calls, cursors=seen.cursors, error=seen.error))
    return counts


def detect_conflicts(factory: sessionmaker[Session]) -> conflicts.DetectReport:
    """Recompute the address conflicts in one transaction (events for those that appeared or went)."""
    with transaction(factory) as session:
        return conflicts.detect(session, now=utcnow())


def _targets(session: Session, box: SecretBox, *, full: bool, full_interval: float,
             site_ids: set[str] | None, now: datetime) -> list[Target]:
    query = (select(Site.id, Site.name, Site.auth_encrypted, Site.availability, InventorySync.full_at,
                    InventorySync.cursors)
             .outerjoin(InventorySync, InventorySync.site_id == Site.id).where(Site.managed.is_(True)))
    if site_ids is not None:
        query = query.where(Site.id.in_(site_ids))
    found = []
    for site_id, name, encrypted, availability, full_at, cursors in session.execute(query):
        cursors = cursors or {}
        needs_full = (full or full_at is None or full_at < now - timedelta(seconds=full_interval)
                      or any(k not in cursors for k in INCREMENTAL_KINDS))
        if availability == "offline" and not needs_full:
            continue  # the health audit tells when it is back; its rows stay, stale
        auth = box.decrypt(encrypted)
        for key in ("password", "application_credential_secret"):
            SECRETS.add(auth.get(key))
        found.append(Target(inventory.SiteRef(site_id, name), auth, needs_full, dict(cursors)))
    return found


def refresh_fleet(
    factory: sessionmaker[Session], *, box: SecretBox, concurrency: int, timeout: float,
    full: bool = False, full_interval: float = 600.0, site_ids: set[str] | None = None,
    pool: SitePool | None = None, lanes: Lanes | None = None, indicator_interval: float | None = 0.0,
) -> RefreshReport:
    """One refresh cycle over the managed sites (or ``site_ids``); with ``lanes``, each site read waits
    for a background slot (no gate without).

    Sites whose hypervisors were read (a full refresh that succeeded) get capacity indicator samples
    from what was stored, at most one per ``indicator_interval`` seconds (None: no samples).
    """
    started = time.monotonic()
    pool = pool or SitePool()
    with transaction(factory) as session:
        targets = _targets(session, box, full=full, full_interval=full_interval, site_ids=site_ids,
                           now=utcnow())
    report = RefreshReport(sites=len(targets), full=sum(t.full for t in targets))
    if not targets:
        return report

    def read(target: Target) -> Observed:
        with background_slot(lanes):
            try:
                conn = pool.connection(target.auth, timeout=timeout)
            except Exception as exc:
                return Observed(full=target.full, error=f"cannot connect: {type(exc).__name__}")
            return read_site(Reader(conn), target)

    capacity_read: set[str] = set()
    with ThreadPoolExecutor(max_workers=min(concurrency, len(targets)), thread_name_prefix="inventory") as ex:
        futures: dict[Future[Observed], Target] = {ex.submit(read, t): t for t in targets}
        for future in as_completed(futures):
            target, seen = futures[future], future.result()
            report.calls += seen.calls
            report.failed += seen.error is not None
            try:
                with transaction(factory) as session:
                    stored = store_site(session, target, seen, utcnow())
                report.counts.add(stored)
                if seen.full and seen.error is None:
                    capacity_read.add(target.site.id)
                report.address_sites += stored.addresses > 0
            except Exception:
                log.exception("cannot store the inventory of site %s", target.site.name)
                report.failed += 1
    if capacity_read and indicator_interval is not None:
        try:
            indicators.record_capacity(factory, capacity_read, interval=indicator_interval)
        except Exception:  # samples are a view; the next full refresh writes them again
            log.exception("capacity indicator samples not written")
    if report.address_sites:
        try:
            report.conflicts = detect_conflicts(factory)
        except Exception:  # the next refresh that changes addresses tries again
            log.exception("address conflict detection failed")
    report.seconds = round(time.monotonic() - started, 3)
    log.info("inventory refresh: %s", report.as_dict())
    return report


def live_read(auth: dict[str, Any], kind: str, *, timeout: float, pool: SitePool | None = None) -> list[Record]:
    """``kind`` read straight from one site (``?live=true``); raises SiteError."""
    for key in ("password", "application_credential_secret"):
        SECRETS.add(auth.get(key))
    return read_live((pool or SitePool()).connection(auth, timeout=timeout), kind)


def inventory_jobs(settings: Settings, factory: sessionmaker[Session], box: SecretBox,
                   lanes: Lanes | None = None, pool: SitePool | None = None) -> list[PeriodicJob]:
    """The two claimed periodic jobs: incremental refresh (fast) and full refresh (slow), their site reads
    behind ``lanes``, through ``pool`` (the process's sessions and tokens)."""
    pool = pool or SitePool()

    def run(full: bool) -> RefreshReport:
        return refresh_fleet(factory, box=box, concurrency=settings.inventory_concurrency,
                             timeout=settings.site_timeout, full=full,
                             full_interval=settings.inventory_full_interval, pool=pool, lanes=lanes,
                             indicator_interval=settings.indicator_interval)

    return [PeriodicJob(INCREMENTAL_JOB, settings.inventory_interval, lambda: run(False), group="inventory"),
            PeriodicJob(FULL_JOB, settings.inventory_full_interval, lambda: run(True), group="inventory")]
