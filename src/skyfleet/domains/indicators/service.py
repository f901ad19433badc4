"""Store, prune and read indicator samples; keyword-only functions over an explicit session.

Why it exists: the audits know each site's numbers only at the moment they look. This module keeps
them as series: written in bulk (one statement per batch of sites, never one transaction per site),
thinned by a per-site sample interval, pruned past the retention in bounded chunks, and read back
averaged into buckets by the database (``ts / step`` on integer epoch seconds, the same SQL on SQLite
and PostgreSQL), with the answer's size bounded before anything is built from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, delete, func, insert, literal_column, select
from sqlalchemy.orm import Session

from skyfleet.domains.indicators.models import IndicatorSample
from skyfleet.domains.quotas.schemas import SERVICE_OF
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import CAPACITY_FIELDS, SERVICE_TYPES
from skyfleet.errors import Unprocessable

MAX_POINTS = 10_000  # points in one answer, over every series
MAX_BUCKETS = 2_000  # points of one series when a step is given
PRUNE_CHUNK = 20_000  # rows deleted by one statement (short locks, bounded transaction)

# name -> (unit, description): every indicator Skyfleet writes. Series names are data, not labels a
# caller chooses, so the names route and the input checks both come from here.
CATALOG: dict[str, tuple[str, str]] = {
    **{f"capacity.{key}": ("GB" if key.startswith("local_gb") else "MB" if key.startswith("memory") else "vCPU",
                           f"hypervisor {key.replace('_', ' ')} summed over the site (inventory refresh)")
       for key in CAPACITY_FIELDS},
    **{f"api.{kind}.latency_ms": ("ms", f"time the {kind} service took to answer its version document "
                                        "(health audit)") for kind in SERVICE_TYPES},
    **{f"api.{kind}.error": ("ratio", f"1 when the {kind} service failed or could not be reached, else 0 "
                                      "(health audit; averaged: the share of failed probes)")
       for kind in SERVICE_TYPES},
    "audit.latency_ms": ("ms", "Keystone authentication time of the health audit (the site's latency)"),
    "audit.duration_ms": ("ms", "time the whole health probe of the site took"),
}
# The per-site names (what GET /metrics exports as gauges); the quota names below are per project.
SITE_NAMES: tuple[str, ...] = tuple(CATALOG)
QUOTA_RESOURCES: tuple[str, ...] = tuple(sorted(SERVICE_OF))
CATALOG.update({
    **{f"quota.{r}.used": ("count", f"{r} used by the project, summed over its sites (quota round)")
       for r in QUOTA_RESOURCES},
    **{f"quota.{r}.limit": ("count", f"the project's global {r} limit (quota round; none when unlimited)")
       for r in QUOTA_RESOURCES},
    **{f"quota.{r}.ratio": ("ratio", f"{r} used / global limit (quota round; none when the limit is 0 or "
                                     "unlimited)") for r in QUOTA_RESOURCES},
})
QUOTA_NAMES: tuple[str, ...] = tuple(n for n in CATALOG if n.startswith("quota."))


@dataclass(frozen=True)
class Sample:
    site_id: str | None  # None: a project's sample (``project_id``)
    name: str
    ts: int  # epoch seconds
    value: float
    project_id: str | None = None


def write(session: Session, samples: Sequence[Sample]) -> int:
    """Insert ``samples`` in one executemany statement (the caller's transaction)."""
    if not samples:
        return 0
    session.execute(insert(IndicatorSample), [
        {"site_id": s.site_id, "project_id": s.project_id, "name": s.name, "ts": s.ts, "value": float(s.value)}
        for s in samples])
    return len(samples)


def due_sites(session: Session, *, site_ids: Iterable[str], name: str, now: int, interval: float) -> set[str]:
    """Of ``site_ids``, those whose last ``name`` sample is at least ``interval`` seconds old (or missing):
    the bounded sample rate. One indexed ``MAX`` per site, in one statement."""
    wanted = set(site_ids)
    if interval <= 0 or not wanted:
        return wanted
    query = (select(IndicatorSample.site_id, func.max(IndicatorSample.ts))
             .where(IndicatorSample.name == name, IndicatorSample.site_id.in_(wanted))
             .group_by(IndicatorSample.site_id))
    recent = {site_id for site_id, last in session.execute(query) if last is not None and now - last < interval}
    return wanted - recent


def due_projects(session: Session, *, project_ids: Iterable[str], name: str, now: int, interval: float) -> set[str]:
    """:func:`due_sites` for project-scoped samples: of ``project_ids``, those whose last ``name`` sample is
    at least ``interval`` seconds old (or missing), in one statement."""
    wanted = set(project_ids)
    if interval <= 0 or not wanted:
        return wanted
    query = (select(IndicatorSample.project_id, func.max(IndicatorSample.ts))
             .where(IndicatorSample.name == name, IndicatorSample.project_id.in_(wanted))
             .group_by(IndicatorSample.project_id))
    recent = {pid for pid, last in session.execute(query) if last is not None and now - last < interval}
    return wanted - recent


def prune(session: Session, *, before: int, chunk: int = PRUNE_CHUNK) -> int:
    """Delete up to ``chunk`` samples older than ``before``; the caller repeats while it returns ``chunk``."""
    oldest = select(IndicatorSample.id).where(IndicatorSample.ts < before).limit(chunk).scalar_subquery()
    result = session.execute(delete(IndicatorSample).where(IndicatorSample.id.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class SeriesQuery:
    since: int
    until: int
    step: int | None = None
    site_ids: tuple[str, ...] = ()  # empty: every site
    names: tuple[str, ...] = ()  # empty: every name of the catalog
    project_ids: tuple[str, ...] = ()  # empty: every project (project-scoped samples: quota usage)


@dataclass
class Series:
    site_id: str | None  # None for a project's series
    site: str | None
    name: str
    unit: str
    points: list[tuple[int, float]] = field(default_factory=list)
    project_id: str | None = None


def expand(patterns: Iterable[str]) -> tuple[str, ...]:
    """Catalog names matching ``patterns`` (exact, or a prefix ending with ``*``), in catalog order."""
    wanted = tuple(patterns)
    return tuple(n for n in CATALOG if any(n == p or (p.endswith("*") and n.startswith(p[:-1])) for p in wanted))


def series(session: Session, *, query: SeriesQuery, max_points: int = MAX_POINTS) -> list[Series]:
    """The samples of ``query``, one series per (site, name), averaged into ``step``-second buckets
    (aligned on multiples of ``step`` since the epoch) when a step is given; 422 beyond ``max_points``."""
    if query.step is not None:
        step = literal_column(str(int(query.step)), BigInteger)  # an int checked above; a literal so GROUP BY matches
        t = ((IndicatorSample.ts // step) * step).label("t")  # integer division on both backends
        stmt = select(IndicatorSample.site_id, IndicatorSample.project_id, IndicatorSample.name, t,
                      func.avg(IndicatorSample.value))
    else:
        stmt = select(IndicatorSample.site_id, IndicatorSample.project_id, IndicatorSample.name, IndicatorSample.ts,
                      IndicatorSample.value)
    stmt = stmt.where(IndicatorSample.ts >= query.since, IndicatorSample.ts < query.until)
    if query.site_ids:
        stmt = stmt.where(IndicatorSample.site_id.in_(query.site_ids))
    if query.project_ids:
        stmt = stmt.where(IndicatorSample.project_id.in_(query.project_ids))
    # Always a list of names, even for "every name": the (name, site_id, ts) index is then a handful of
    # seeks per site instead of a scan of every site's rows of the range.
    stmt = stmt.where(IndicatorSample.name.in_(query.names or tuple(CATALOG)))
    if query.step is not None:
        stmt = stmt.group_by(IndicatorSample.site_id, IndicatorSample.project_id, IndicatorSample.name,
                             literal_column("t"))
        stmt = stmt.order_by(IndicatorSample.site_id, IndicatorSample.project_id, IndicatorSample.name,
                             literal_column("t"))
    else:
        stmt = stmt.order_by(IndicatorSample.site_id, IndicatorSample.project_id, IndicatorSample.name,
                             IndicatorSample.ts)
    rows = session.execute(stmt.limit(max_points + 1)).all()
    if len(rows) > max_points:
        raise Unprocessable(f"the answer would hold more than {max_points} points: give a larger step, a "
                            "shorter since..until, or a site or name")
    site_names: dict[str, str] = {}
    if rows:
        site_names = {sid: name for sid, name in session.execute(
            select(Site.id, Site.name).where(Site.id.in_({r[0] for r in rows if r[0] is not None})))}
    found: dict[tuple[str | None, str | None, str], Series] = {}
    for site_id, project_id, name, ts, value in rows:
        key = (site_id, project_id, name)
        entry = found.get(key)
        if entry is None:
            entry = found[key] = Series(site_id=site_id, site=site_names.get(site_id, site_id) if site_id else None,
                                        name=name, unit=CATALOG.get(name, ("", ""))[0], project_id=project_id)
        entry.points.append((int(ts), round(float(value), 3)))
    return sorted(found.values(), key=lambda s: (s.site or "", s.project_id or "", s.name))


def recent_window(*, sample_interval: float, audit_interval: float, full_interval: float) -> int:
    """How far back "recent" looks: two of the longest of the intervals that make samples (so every site
    sampled lately has a sample in it), at most a day."""
    return int(min(86400, 2 * max(sample_interval, audit_interval, full_interval)))


def latest(session: Session, *, since: int, limit: int) -> list[tuple[str, str, str, float]]:
    """(site name, site id, indicator name, value) of each managed site's newest sample of each per-site
    name since ``since``: one statement (the last written row per (site, name) over the window's indexed
    range, joined back; the highest id, so two audits in one second give the later one), at most ``limit``
    rows. What ``GET /metrics`` exports; the caller bounds ``limit`` by its site cap."""
    newest = (select(func.max(IndicatorSample.id).label("id"))
              .where(IndicatorSample.ts >= since, IndicatorSample.name.in_(SITE_NAMES))
              .group_by(IndicatorSample.site_id, IndicatorSample.name).subquery())
    stmt = (select(Site.name, Site.id, IndicatorSample.name, IndicatorSample.value)
            .join(newest, IndicatorSample.id == newest.c.id)
            .join(Site, Site.id == IndicatorSample.site_id).where(Site.managed.is_(True))
            .order_by(Site.name, IndicatorSample.name).limit(limit))
    return [(site, str(site_id), name, float(value)) for site, site_id, name, value in session.execute(stmt)]


def names(session: Session, *, since: int) -> dict[str, tuple[int, int]]:
    """Name -> (sites or projects sampled, newest sample) over the samples since ``since`` (an indexed range)."""
    query = (select(IndicatorSample.name,
                    func.count(func.distinct(func.coalesce(IndicatorSample.site_id, IndicatorSample.project_id))),
                    func.max(IndicatorSample.ts))
             .where(IndicatorSample.ts >= since).group_by(IndicatorSample.name))
    return {name: (int(sites), int(latest)) for name, sites, latest in session.execute(query)}
