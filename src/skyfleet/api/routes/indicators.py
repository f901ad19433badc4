"""/v1/indicators: per-site capacity, API health and audit time, and per-project quota usage, as
retained time series.

Per-site series are for fleet admins only (``access.indicator_projects``): like the capacity of
``/v1/inventory/summary`` (hidden from tenants) and ``/v1/sites``, every series names a site and what it
holds. A tenant reads its own project's quota series (``quota.*``) and nothing else. Inputs are checked
here, each refusal a 422 naming the parameter and what would be accepted, and the answer's size is bounded
(``MAX_BUCKETS`` points per series, ``MAX_POINTS`` in all) before it is built.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from skyfleet.api import access
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.indicators.schemas import NameList, NameOut, SeriesList, SeriesOut
from skyfleet.domains.sites import service as sites
from skyfleet.errors import Unprocessable

router = APIRouter(prefix="/v1/indicators", tags=["indicators"], dependencies=CLEAN_URL)
DURATION = re.compile(r"^(\d{1,9})([smhd]?)$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_RANGE = timedelta(hours=1)
MAX_STEP = 7 * 86400
MAX_BACK = 3660 * 86400  # a duration before now: ten years, far past any retention
NAME = re.compile(r"^[a-z0-9_.-]{1,64}$")


def seconds(value: str, label: str) -> int:
    """``300``, ``90s``, ``15m``, ``1h``, ``7d`` as seconds; 422 naming ``label`` otherwise."""
    match = DURATION.match(value.strip())
    if match is None:
        raise Unprocessable(f"{label}: {value!r} is not a duration (seconds, or a number with s, m, h or d: 15m)")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def moment(value: str | None, label: str, now: datetime) -> datetime | None:
    """An ISO 8601 time with a time zone, or a duration before now (``1h``)."""
    if value is None or not value.strip():
        return None
    if DURATION.match(value.strip()):
        back = seconds(value, label)
        if back > MAX_BACK:
            raise Unprocessable(f"{label}: at most {MAX_BACK // 86400} days before now, got {value!r}")
        return now - timedelta(seconds=back)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise Unprocessable(f"{label} must carry a time zone, e.g. 2026-01-01T00:00:00Z")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one that leaves the calendar in UTC (year 1, +14:00)
        raise Unprocessable(f"{label}: {value!r} is neither an ISO 8601 time (2026-01-01T00:00:00Z) nor a "
                            "duration before now (1h)") from None


def name_filter(value: str | None) -> tuple[str, ...]:
    """The catalog names a comma-separated ``name`` of names and prefixes (``api.*``) means; 422 for an item
    that matches nothing."""
    items = csv(value, "name")
    for item in items:
        base = item[:-1] if item.endswith("*") else item
        if not NAME.match(base or "-"):
            raise Unprocessable(f"name: {item!r} is not an indicator name (lower-case letters, digits, . _ -; "
                                "a trailing * for a prefix)")
        if item.endswith("*"):
            if not indicators.expand([item]):
                raise Unprocessable(f"name: no indicator starts with {base!r}; GET /v1/indicators/names lists them")
        elif item not in indicators.CATALOG:
            raise Unprocessable(f"name: unknown indicator {item!r}; GET /v1/indicators/names lists them")
    return indicators.expand(items)


def _step(value: str | None, since: datetime, until: datetime) -> int | None:
    if value is None or not value.strip():
        return None
    step = seconds(value, "step")
    if not 1 <= step <= MAX_STEP:
        raise Unprocessable(f"step: from 1 second to {MAX_STEP} seconds (7d), got {step}")
    buckets = -(-int((until - since).total_seconds()) // step)
    if buckets > indicators.MAX_BUCKETS:
        raise Unprocessable(f"step: {step} s over since..until makes {buckets} points per series, at most "
                            f"{indicators.MAX_BUCKETS}: give a step of at least "
                            f"{-(-int((until - since).total_seconds()) // indicators.MAX_BUCKETS)} s")
    return step


@router.get("", response_model=SeriesList)
def list_series(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    site: Annotated[str | None, Query(description="Comma-separated site names or ids; none: every site")] = None,
    name: Annotated[str | None, Query(description="Comma-separated indicator names, or prefixes with a "
                                                  "trailing * (api.*); none: every indicator")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 with a time zone, or a duration before now "
                                                   "(1h, 30m, 7d); default: until minus 1 h")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 with a time zone, or a duration before now; "
                                                   "default: now (exclusive)")] = None,
    step: Annotated[str | None, Query(description="Average into buckets this wide: seconds, or 5m, 1h; "
                                                  "none: raw samples")] = None,
    project: Annotated[str | None, Query(description="Comma-separated project ids: their quota series "
                                                     "(quota.*); tenants: their own project only, the default")]
    = None,
) -> SeriesList:
    """Indicator samples per site and name, oldest first, raw or averaged into ``step`` buckets.

    Samples are stamped to the second: ``since`` and ``until`` are taken to the whole second around them
    (a sample of this second is in a range that ends now).
    """
    now = utcnow()
    end = moment(until, "until", now) or now
    start = moment(since, "since", now) or end - DEFAULT_RANGE
    if start >= end:
        raise Unprocessable(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    width = _step(step, start, end)
    names = name_filter(name)
    refs = csv(site, "site")
    projects = access.indicator_projects(principal, projects=csv(project, "project"), sites=bool(refs),
                                         site_names=any(n not in indicators.QUOTA_NAMES for n in names))
    if not access.allows(principal, "indicators.sites"):
        names = names or indicators.QUOTA_NAMES  # a tenant's default: its project's quota series
    with transaction(runtime.factory) as session:
        site_ids = tuple(sites.get_site(session, ref).id for ref in refs)
        found = indicators.series(session, query=indicators.SeriesQuery(
            since=math.floor(start.timestamp()), until=math.ceil(end.timestamp()), step=width, site_ids=site_ids,
            names=names, project_ids=projects))
    out = [SeriesOut(site_id=s.site_id, site=s.site, project_id=s.project_id, name=s.name, unit=s.unit,
                     points=[(datetime.fromtimestamp(t, UTC), v) for t, v in s.points]) for s in found]
    return SeriesList(since=start, until=end, step=width, points=sum(len(s.points) for s in out), series=out)


def names_window(runtime: RuntimeDep) -> int:
    """How far back the names route looks: two of the longest of the intervals that make samples, so
    every site sampled lately is counted, and no more (the count reads every row of the window)."""
    s = runtime.settings
    return indicators.recent_window(sample_interval=s.indicator_interval, audit_interval=s.audit_interval,
                                    full_interval=s.inventory_full_interval)


@router.get("/names", response_model=NameList)
def list_names(runtime: RuntimeDep) -> NameList:
    """Every indicator Skyfleet writes, with how many sites have a recent sample of it."""
    window = names_window(runtime)
    now = utcnow()
    with transaction(runtime.factory) as session:
        seen = indicators.names(session, since=int(now.timestamp()) - window)
    out = []
    for name, (unit, description) in indicators.CATALOG.items():
        count, latest = seen.get(name, (0, 0))
        out.append(NameOut(name=name, unit=unit, description=description, sites=count,
                           latest=datetime.fromtimestamp(latest, UTC) if count else None))
    s = runtime.settings
    return NameList(window_seconds=window, retention_seconds=int(s.indicator_retention),
                    sample_interval_seconds=int(s.indicator_interval), names=out)
