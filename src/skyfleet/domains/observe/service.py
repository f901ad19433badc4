"""The figures ``GET /metrics`` exports about the fleet, from a handful of aggregate queries.

Why it exists: the fleet's state (sites' availability, operations and tasks, the queue, inventory
freshness, quota use) lives in the database, shared by every process; counting it in each process
would disagree between replicas and double in a multiprocess registry. So it is read at scrape time,
in one short transaction of GROUP BY / MIN queries over indexed columns (never one query per row), and
per-site or per-project series are read only while their number stays under the configured caps: above
a cap only fleet-wide aggregates are returned, so a 10,000-site fleet costs Prometheus a few dozen
series, not tens of thousands (docs/observe.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.inventory.models import InventorySync
from skyfleet.domains.operations.models import PENDING, RUNNING, Operation, Task
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaSiteState
from skyfleet.domains.sites.models import Site

AVAILABILITIES = ("online", "degraded", "offline", "unknown")
USAGE_ROWS_PER_SERIES = 200  # per-site usage rows summed per ratio series at most (bounds a scrape's work)


@dataclass(frozen=True)
class SiteFigures:
    name: str
    availability: str
    latency_seconds: float | None
    inventory_age_seconds: float | None  # None: never refreshed


@dataclass
class FleetFigures:
    """Everything one scrape reports about the fleet; ``sites`` / ``quota_ratios`` are None when capped."""

    sites_by_availability: dict[str, int] = field(default_factory=dict)
    unmanaged_sites: int = 0
    sites: list[SiteFigures] | None = None
    operations: dict[tuple[str, str], int] = field(default_factory=dict)
    tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    queue_due: int = 0
    queue_oldest_due_age_seconds: float = 0.0
    queue_waiting: int = 0
    leases_expired: int = 0
    inventory_never_refreshed: int = 0
    inventory_oldest_age_seconds: float = 0.0
    quota_projects: int = 0
    quota_projects_breached: int = 0
    quota_ratios: dict[tuple[str, str], float] | None = None  # (project, resource) -> usage / limit
    # (site name, indicator name) -> newest value within the recent window; None when per-site series are capped
    site_indicators: dict[tuple[str, str], float] | None = None


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def fleet_figures(session: Session, *, now: datetime, site_series_max: int, quota_series_max: int,
                  indicator_window: int = 1200) -> FleetFigures:
    """The fleet as metrics see it at ``now``; per-site series (the indicators' newest values within the
    last ``indicator_window`` seconds among them) while at most ``site_series_max`` managed sites, quota
    ratios while at most ``quota_series_max`` (project, resource) series."""
    out = FleetFigures()
    _sites(session, out, now=now, series_max=site_series_max)
    if out.sites is not None:
        # the same all-or-nothing cap as the other per-site series: one bounded statement, never one per site
        rows = indicators.latest(session, since=int(now.timestamp()) - indicator_window,
                                 limit=max(1, len(out.sites)) * len(indicators.SITE_NAMES))
        out.site_indicators = {(site, name): value for site, _, name, value in rows}
    _work(session, out, now=now)
    _quota(session, out, series_max=quota_series_max)
    return out


def _sites(session: Session, out: FleetFigures, *, now: datetime, series_max: int) -> None:
    counts = {a: 0 for a in AVAILABILITIES}
    for managed, availability, count in session.execute(
            select(Site.managed, Site.availability, func.count()).group_by(Site.managed, Site.availability)):
        if managed:
            counts[availability] = counts.get(availability, 0) + count
        else:
            out.unmanaged_sites += count
    out.sites_by_availability = counts
    fresh = session.execute(
        select(func.count(), func.count(InventorySync.refreshed_at), func.min(InventorySync.refreshed_at))
        .select_from(Site).outerjoin(InventorySync, InventorySync.site_id == Site.id).where(Site.managed.is_(True))
    ).one()
    out.inventory_never_refreshed = fresh[0] - fresh[1]
    out.inventory_oldest_age_seconds = _age(now, fresh[2]) or 0.0
    if sum(counts.values()) > series_max:
        return
    rows = session.execute(
        select(Site.name, Site.availability, Site.latency_ms, InventorySync.refreshed_at)
        .outerjoin(InventorySync, InventorySync.site_id == Site.id).where(Site.managed.is_(True))
        .order_by(Site.name).limit(series_max))
    out.sites = [SiteFigures(name=name, availability=availability,
                             latency_seconds=None if latency is None else latency / 1000.0,
                             inventory_age_seconds=_age(now, refreshed))
                 for name, availability, latency, refreshed in rows]


def _work(session: Session, out: FleetFigures, *, now: datetime) -> None:
    out.operations = {(kind, state): count for kind, state, count in session.execute(
        select(Operation.kind, Operation.state, func.count()).group_by(Operation.kind, Operation.state))}
    out.tasks = {(kind, state): count for kind, state, count in session.execute(
        select(Task.kind, Task.state, func.count()).group_by(Task.kind, Task.state))}
    due, oldest = session.execute(
        select(func.count(), func.min(Task.next_attempt_at))
        .where(Task.state == PENDING, Task.next_attempt_at <= now)).one()
    out.queue_due = due
    out.queue_oldest_due_age_seconds = _age(now, oldest) or 0.0
    out.queue_waiting = session.scalar(
        select(func.count()).select_from(Task).where(Task.state == PENDING, Task.next_attempt_at > now)) or 0
    out.leases_expired = session.scalar(
        select(func.count()).select_from(Task).where(and_(Task.state == RUNNING, Task.lease_expires_at < now))) or 0


def _quota(session: Session, out: FleetFigures, *, series_max: int) -> None:
    """Projects and breaches always; usage ratios while the (project, resource) series stay under
    ``series_max`` and the usage rows to sum under :data:`USAGE_ROWS_PER_SERIES` per series (usage is
    JSON per project and site, summed here: the cost is one row per project and site)."""
    projects = quotas.managed_projects(session)
    out.quota_projects = len(projects)
    out.quota_projects_breached = sum(1 for project in projects if project.breached)
    classes = quotas.class_limits(session)
    limits = {(p.project_id, resource): limit for p in projects
              for resource, limit in quotas.stacked_limits(classes, p).items() if limit > 0}
    if len(limits) > series_max:
        return
    rows = session.scalar(select(func.count()).select_from(QuotaSiteState)) or 0
    if rows > USAGE_ROWS_PER_SERIES * max(1, len(limits)):
        return
    usage: dict[str, Counter[str]] = {p.project_id: Counter() for p in projects}
    for project_id, used in session.execute(select(QuotaSiteState.project_id, QuotaSiteState.usage)):
        if project_id in usage:
            usage[project_id].update({k: int(v) for k, v in (used or {}).items() if isinstance(v, int | float)})
    out.quota_ratios = {key: usage[key[0]][key[1]] / limit for key, limit in limits.items()}
