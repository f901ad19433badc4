"""Read the global view: filtered, sorted, paginated lists, and the fleet summary.

Every answer is served from Skyfleet's own store (never a fan-out to sites). A row's freshness is
its site's last successful refresh of that kind; rows of an offline site, or older than the stale
threshold, are flagged stale with their age rather than hidden.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select, tuple_
from sqlalchemy.orm import Session

from skyfleet.domains.inventory.models import InventoryItem, InventorySync
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.quotas.models import QuotaSiteState
from skyfleet.domains.selectors import Requirement
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import CAPACITY_FIELDS, INCREMENTAL_KINDS
from skyfleet.errors import Invalid

SORTS = {"name": InventoryItem.name, "status": InventoryItem.status, "changed_at": InventoryItem.changed_at,
         "site": Site.name, "project": InventoryItem.project_id, "id": InventoryItem.id}


@dataclass(frozen=True)
class ItemFilter:
    kind: str
    site_ids: tuple[str, ...] = ()
    selector: list[Requirement] = field(default_factory=list)
    project_id: str | None = None
    status: tuple[str, ...] = ()
    name: str | None = None
    ip: str | None = None
    changed_since: datetime | None = None
    text: str | None = None  # a search box's words: a name substring, an id prefix or an exact IP


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def project_pairs(session: Session, project_id: str) -> set[tuple[str, str]]:
    """(site id, remote project id) of global project ``project_id`` on sites that share nothing: an
    explicit mapping, or the project found by name there (remembered by the quota collection)."""
    pairs = {(r.site_id, r.remote_project_id) for r in session.execute(
        select(ProjectMapping.site_id, ProjectMapping.remote_project_id)
        .where(ProjectMapping.project_id == project_id))}
    pairs |= {(r.site_id, r.remote_project_id) for r in session.execute(
        select(QuotaSiteState.site_id, QuotaSiteState.remote_project_id)
        .where(QuotaSiteState.project_id == project_id, QuotaSiteState.remote_project_id.is_not(None)))}
    return pairs


def project_clause(session: Session, project_id: str, *, site_column: Any = InventoryItem.site_id,
                   project_column: Any = InventoryItem.project_id) -> Any:
    """Rows of global project ``project_id`` on every site: the same id (sites sharing the home
    Keystone), or the id it maps to in a site that shares nothing (:func:`project_pairs`). The
    columns default to the inventory's; derived tables (addresses) pass their own."""
    pairs = project_pairs(session, project_id)
    mapped = tuple_(site_column, project_column).in_(sorted(pairs)) if pairs else false()
    return or_(project_column == project_id, mapped)


def _filtered(session: Session, query: Any, filters: ItemFilter) -> Any:
    query = query.where(InventoryItem.kind == filters.kind)
    if filters.site_ids:
        query = query.where(InventoryItem.site_id.in_(filters.site_ids))
    if filters.selector:
        query = query.where(InventoryItem.site_id.in_(
            sites.site_query(sites.SiteFilter(selector=filters.selector)).with_only_columns(Site.id)))
    if filters.project_id is not None:
        query = query.where(project_clause(session, filters.project_id))
    if filters.status:
        query = query.where(InventoryItem.status.in_(filters.status))
    if filters.name:
        query = query.where(InventoryItem.name.ilike(f"%{_escape(filters.name)}%", escape="\\"))
    if filters.ip:
        query = query.where(InventoryItem.ips.like(f"% {_escape(filters.ip)} %", escape="\\"))
    if filters.changed_since is not None:
        query = query.where(InventoryItem.changed_at >= filters.changed_since)
    if filters.text:
        escaped = _escape(filters.text)
        query = query.where(or_(InventoryItem.name.ilike(f"%{escaped}%", escape="\\"),
                                InventoryItem.remote_id.like(f"{escaped}%", escape="\\"),
                                InventoryItem.ips.like(f"% {escaped} %", escape="\\")))
    return query


def parse_sort(text: str) -> tuple[str, bool]:
    key, descending = (text[1:], True) if text.startswith("-") else (text, False)
    if key not in SORTS:
        raise Invalid(f"cannot sort by {key!r}; choose one of {sorted(SORTS)} (prefix - for descending)")
    return key, descending


@dataclass(frozen=True)
class Row:
    item: InventoryItem
    site_name: str
    availability: str
    observed_at: datetime | None


def list_items(session: Session, *, filters: ItemFilter, sort: str, limit: int,
               offset: int) -> tuple[list[Row], int | None]:
    """One page of rows; the second value is the offset of the next page, if any."""
    key, descending = parse_sort(sort)
    column = SORTS[key]
    observed = InventorySync.refreshed_at if filters.kind in INCREMENTAL_KINDS else InventorySync.full_at
    query = (select(InventoryItem, Site.name, Site.availability, observed)
             .join(Site, Site.id == InventoryItem.site_id)
             .outerjoin(InventorySync, InventorySync.site_id == InventoryItem.site_id))
    query = _filtered(session, query, filters)
    order = [column.desc() if descending else column.asc(), InventoryItem.id.asc()]
    rows = [Row(r[0], r[1], r[2], r[3]) for r in session.execute(
        query.order_by(*order).offset(offset).limit(limit + 1))]
    return rows[:limit], offset + limit if len(rows) > limit else None


def counts(session: Session, *, project_id: str | None) -> list[tuple[str, str, str | None, int]]:
    """(site id, kind, status, count) over the whole inventory (a tenant's projects only)."""
    query = select(InventoryItem.site_id, InventoryItem.kind, InventoryItem.status, func.count())
    if project_id is not None:
        query = query.where(project_clause(session, project_id))
    query = query.group_by(InventoryItem.site_id, InventoryItem.kind, InventoryItem.status)
    return [(r[0], r[1], r[2], int(r[3])) for r in session.execute(query)]


def capacity(session: Session, *, site_ids: Collection[str] | None = None) -> dict[str, dict[str, int]]:
    """Site id -> summed hypervisor capacity (vcpus, memory_mb, local_gb, used and total), of every site
    or of ``site_ids``; a site without hypervisor rows has no entry."""
    totals: dict[str, dict[str, int]] = {}
    query = select(InventoryItem.site_id, InventoryItem.data).where(InventoryItem.kind == "hypervisors")
    if site_ids is not None:
        query = query.where(InventoryItem.site_id.in_(site_ids))
    for site_id, data in session.execute(query):
        site = totals.setdefault(site_id, dict.fromkeys(CAPACITY_FIELDS, 0))
        for key in CAPACITY_FIELDS:
            site[key] += int((data or {}).get(key) or 0)
    return totals


def site_freshness(session: Session) -> dict[str, tuple[str, str, datetime | None, datetime | None, str | None]]:
    """Site id -> (name, availability, last refresh, last full refresh, last error)."""
    query = (select(Site.id, Site.name, Site.availability, InventorySync.refreshed_at, InventorySync.full_at,
                    InventorySync.last_error)
             .outerjoin(InventorySync, InventorySync.site_id == Site.id))
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in session.execute(query)}
