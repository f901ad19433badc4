"""/v1/inventory: the global view of every tenant resource on every site, from Skyfleet's store.

Tenants see the rows of their own project only (and no capacity); admins see everything. A live
read (``?live=true`` with one ``site``) asks that site directly, through the reconcile layer.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated

from cachetools import TTLCache
from fastapi import APIRouter, Query

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.inventory import queries
from skyfleet.domains.inventory.schemas import ItemList, ItemOut, SiteSummary, Summary
from skyfleet.domains.schedules import service as schedules
from skyfleet.domains.selectors import parse_selector
from skyfleet.domains.sites import service as sites
from skyfleet.drivers.base import CAPACITY_FIELDS, INCREMENTAL_KINDS, Record
from skyfleet.drivers.base import INVENTORY_KINDS as KINDS
from skyfleet.errors import Forbidden, Invalid, SiteError, Unavailable
from skyfleet.reconcile import inventory as refresher

router = APIRouter(prefix="/v1/inventory", tags=["inventory"], dependencies=CLEAN_URL)
STALE_FACTOR = 3  # rows older than this many refresh intervals are stale
SUMMARY_TTL = 3.0
_summary_cache: TTLCache[tuple[str, bool, str | None], Summary] = TTLCache(maxsize=1024, ttl=SUMMARY_TTL)
_summary_lock = threading.Lock()


LIVE_TTL = 2.0  # a live read of one site and kind serves every caller for this long
_live_cache: TTLCache[tuple[str, str], list[Record]] = TTLCache(maxsize=256, ttl=LIVE_TTL)
_live_lock = threading.Lock()


def _project_scope(principal: Principal, project: str | None) -> str | None:
    if access.allows(principal, "inventory.any_project"):
        return project
    if project is not None and project != principal.project_id:
        raise Forbidden(f"project {project!r} is not the project of your token; tenants see their own project only")
    return access.row_scope(principal)


def _age(observed: datetime | None, now: datetime) -> float | None:
    return round((now - observed).total_seconds(), 1) if observed else None


def _stale(availability: str, age: float | None, limit: float) -> bool:
    return availability == "offline" or age is None or age > limit


def _utilization(cap: dict[str, int]) -> dict[str, float]:
    pairs = {"vcpus": ("vcpus_used", "vcpus"), "memory": ("memory_mb_used", "memory_mb"),
             "disk": ("local_gb_used", "local_gb")}
    return {k: round(cap[u] / cap[t], 4) if cap[t] else 0.0 for k, (u, t) in pairs.items()}


@router.get("/summary", response_model=Summary)
def summary(runtime: RuntimeDep, principal: PrincipalDep) -> Summary:
    """Counts per site, kind and status; capacity and utilization per site and fleet-wide (admins).

    Computed over the whole inventory, so it is cached for ``SUMMARY_TTL`` seconds per scope: far
    shorter than the refresh interval that changes it.
    """
    key = (runtime.settings.effective_database_url, principal.is_admin, principal.project_id)
    with _summary_lock:
        cached = _summary_cache.get(key)
    if cached is None:
        cached = _summary(runtime, principal)
        with _summary_lock:
            _summary_cache[key] = cached
    return cached


def _summary(runtime: RuntimeDep, principal: Principal) -> Summary:
    now, limit = utcnow(), runtime.settings.inventory_interval * STALE_FACTOR
    admin = access.allows(principal, "inventory.any_project")
    with transaction(runtime.factory) as session:
        rows = queries.counts(session, project_id=access.row_scope(principal))
        fresh = queries.site_freshness(session)
        cap = queries.capacity(session) if admin else {}
    totals: dict[str, dict[str, int]] = {}
    per_site: dict[str, SiteSummary] = {}
    for site_id, kind, status, count in rows:
        name, availability, refreshed, full_at, error = fresh[site_id]
        entry = per_site.get(site_id) or per_site.setdefault(site_id, SiteSummary(
            site_id=site_id, site=name, availability=availability, refreshed_at=refreshed,
            full_refreshed_at=full_at, stale=_stale(availability, _age(refreshed, now), limit),
            last_error=error if admin else None))
        key = status or "-"
        entry.counts.setdefault(kind, {})[key] = count
        totals.setdefault(kind, {})
        totals[kind][key] = totals[kind].get(key, 0) + count
    fleet = dict.fromkeys(CAPACITY_FIELDS, 0)
    for site_id, values in cap.items():
        found = per_site.get(site_id)
        if found is not None:
            found.capacity, found.utilization = values, _utilization(values)
        for key in CAPACITY_FIELDS:
            fleet[key] += values[key]
    return Summary(totals=totals, capacity=fleet if admin else None,
                   utilization=_utilization(fleet) if admin else None,
                   sites=sorted(per_site.values(), key=lambda s: s.site))


@router.post("/refresh", status_code=202)
def refresh(runtime: RuntimeDep, principal: PrincipalDep,
            full: Annotated[bool, Query(description="Full refresh of every kind")] = False) -> dict[str, str]:
    """Make the (incremental or full) inventory refresh due now; the claimed periodic job runs it."""
    job = refresher.FULL_JOB if full else refresher.INCREMENTAL_JOB
    with transaction(runtime.factory) as session:
        schedules.run_now(session, name=job, now=utcnow())
    return {"scheduled": job}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise Invalid(f"unknown inventory kind {kind!r}; known: {list(KINDS)}")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid("updated_since must carry a time zone, e.g. 2026-01-01T00:00:00Z")
    return value.astimezone(UTC) if value else None


@router.get("/{kind}", response_model=ItemList)
def list_items(
    kind: str, runtime: RuntimeDep, principal: PrincipalDep,
    site: Annotated[str | None, Query(description="Site id or name")] = None,
    selector: Annotated[str | None, Query(description="Site label selector, e.g. tier=edge")] = None,
    project: Annotated[str | None, Query(description="Project id (admins)")] = None,
    status: Annotated[str | None, Query(description="Comma-separated statuses, e.g. ACTIVE,ERROR")] = None,
    name: Annotated[str | None, Query(max_length=255, description="Substring of the name")] = None,
    ip: Annotated[str | None, Query(max_length=64, description="Exact IP address")] = None,
    q: Annotated[str | None, Query(max_length=255, description="Search: a substring of the name, a prefix of "
                                   "the id on the site, or an exact IP address")] = None,
    updated_since: Annotated[datetime | None, Query(description="Changed at or after (ISO 8601)")] = None,
    sort: Annotated[str, Query(description="name, status, changed_at, site, project, id; -key descends")] = "id",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    live: Annotated[bool, Query(description="Read this one site now instead of the store")] = False,
) -> ItemList:
    _check_kind(kind)
    queries.parse_sort(sort)
    filters = queries.ItemFilter(
        kind=kind, selector=parse_selector(selector) if selector else [],
        project_id=_project_scope(principal, project),
        status=csv(status, "status"), name=name, ip=ip,
        changed_since=_aware(updated_since), text=_search_text(q))
    if live:
        return _live(runtime, site, filters, limit)
    now, stale_after = utcnow(), runtime.settings.inventory_interval * STALE_FACTOR
    if kind not in INCREMENTAL_KINDS:
        stale_after = runtime.settings.inventory_full_interval * STALE_FACTOR
    with transaction(runtime.factory) as session:
        if site is not None:
            filters = queries.ItemFilter(**{**filters.__dict__, "site_ids": (sites.get_site(session, site).id,)})
        rows, next_offset = queries.list_items(session, filters=filters, sort=sort, limit=limit, offset=offset)
        items = []
        for row in rows:
            age = _age(row.observed_at, now)
            item = row.item
            items.append(ItemOut(
                kind=item.kind, site_id=item.site_id, site=row.site_name, remote_id=item.remote_id,
                project_id=item.project_id, name=item.name, status=item.status, ips=item.ips.split(),
                data=item.data, changed_at=item.changed_at, observed_at=row.observed_at, age_seconds=age,
                stale=_stale(row.availability, age, stale_after)))
    return ItemList(items=items, next_offset=next_offset)


def _search_text(q: str | None) -> str | None:
    """The search words, trimmed; blank means no search (CLEAN_URL has refused control characters)."""
    return q.strip() if q and q.strip() else None


def _found(record: Record, text: str | None) -> bool:
    return (not text or text.lower() in (record.name or "").lower() or record.remote_id.startswith(text)
            or text in record.ips)


def _matches(record: Record, filters: queries.ItemFilter) -> bool:
    return ((filters.project_id is None or record.project_id == filters.project_id)
            and (not filters.status or record.status in filters.status)
            and (not filters.name or filters.name.lower() in (record.name or "").lower())
            and (not filters.ip or filters.ip in record.ips) and _found(record, filters.text))


def _live(runtime: RuntimeDep, site: str | None, filters: queries.ItemFilter, limit: int) -> ItemList:
    if site is None:
        raise Invalid("live=true reads one site: give site=<id or name>")
    with transaction(runtime.factory) as session:
        found = sites.get_site(session, site)
        site_id, site_name, auth = found.id, found.name, sites.decrypt_auth(runtime.box, found)
    with _live_lock:
        records = _live_cache.get((site_id, filters.kind))
    if records is None:
        try:
            records = refresher.live_read(auth, filters.kind, timeout=runtime.settings.site_timeout)
        except SiteError as exc:
            raise Unavailable(f"live read of site {site_name} failed: {exc.message}") from exc
        with _live_lock:
            _live_cache[(site_id, filters.kind)] = records
    now = utcnow()
    items = [ItemOut(kind=r.kind, site_id=site_id, site=site_name, remote_id=r.remote_id, project_id=r.project_id,
                     name=r.name, status=r.status, ips=list(r.ips), data=r.data, observed_at=now,
                     age_seconds=0.0, live=True)
             for r in records if _matches(r, filters)]
    return ItemList(items=items[:limit], next_offset=None)
