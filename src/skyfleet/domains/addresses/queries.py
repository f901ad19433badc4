"""Read the address view: filtered pages of addresses, utilisation per site and subnet, conflicts.

Every filter is an indexed predicate on ``address_items``: an exact IP and a CIDR are ranges of the
fixed-width ``ip_key`` within one IP version, a MAC is compared in lower case. A tenant's rows are
those of its project on every site (the inventory's project mapping rule).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from skyfleet.domains.addresses import netmath
from skyfleet.domains.addresses.conflicts import DUP_PUBLIC
from skyfleet.domains.addresses.models import AddressConflict, AddressItem, AddressSubnet
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.domains.inventory.models import InventorySync
from skyfleet.domains.sites.models import Site

KINDS = ("fixed", "floating", "gateway")


@dataclass(frozen=True)
class AddressFilter:
    project_id: str | None = None  # None: every project (fleet admins)
    site_id: str | None = None
    ip: netmath.IPAddress | None = None
    cidr: netmath.IPNetwork | None = None
    mac: str | None = None
    device: str | None = None
    kinds: tuple[str, ...] = ()
    version: int | None = None


@dataclass(frozen=True)
class AddressRow:
    item: AddressItem
    site_name: str
    availability: str
    observed_at: datetime | None


def _filtered(session: Session, query: Any, filters: AddressFilter) -> Any:
    a = AddressItem
    if filters.project_id is not None:
        query = query.where(inventory_queries.project_clause(session, filters.project_id, site_column=a.site_id,
                                                             project_column=a.project_id))
    if filters.site_id is not None:
        query = query.where(a.site_id == filters.site_id)
    if filters.ip is not None:
        query = query.where(a.ip_version == filters.ip.version, a.ip_key == netmath.key_of(filters.ip))
    if filters.cidr is not None:
        first, last = netmath.key_range(filters.cidr)
        query = query.where(a.ip_version == filters.cidr.version, a.ip_key >= first, a.ip_key <= last)
    if filters.mac is not None:
        query = query.where(a.mac == filters.mac)
    if filters.device is not None:
        query = query.where((a.device_id == filters.device) | (a.device_name == filters.device))
    if filters.kinds:
        query = query.where(a.kind.in_(filters.kinds))
    if filters.version is not None:
        query = query.where(a.ip_version == filters.version)
    return query


def list_addresses(session: Session, *, filters: AddressFilter, limit: int,
                   offset: int) -> tuple[list[AddressRow], int | None]:
    """One page ordered by address (v4 first), then site; the second value is the next page's offset."""
    a = AddressItem
    query = (select(a, Site.name, Site.availability, InventorySync.full_at)
             .join(Site, Site.id == a.site_id)
             .outerjoin(InventorySync, InventorySync.site_id == a.site_id))
    query = _filtered(session, query, filters).order_by(a.ip_version, a.ip_key, a.id)
    rows = [AddressRow(r[0], r[1], r[2], r[3]) for r in session.execute(query.offset(offset).limit(limit + 1))]
    return rows[:limit], offset + limit if len(rows) > limit else None


@dataclass
class SubnetUse:
    site_id: str
    subnet: AddressSubnet
    used: int
    free: int


def utilisation(session: Session, *, project_id: str | None, site_id: str | None) -> list[SubnetUse]:
    """Used and free addresses of every subnet in scope (a tenant: its project's subnets).

    Used: distinct addresses held in the subnet (fixed, gateway and floating). Free: Neutron's
    default pool (:func:`netmath.neutron_pool_size`) minus the used addresses inside it, the gateway
    apart. Subnets created with narrower allocation pools have fewer free addresses than shown.
    """
    s, a = AddressSubnet, AddressItem
    query = select(s)
    if project_id is not None:
        query = query.where(inventory_queries.project_clause(session, project_id, site_column=s.site_id,
                                                             project_column=s.project_id))
    if site_id is not None:
        query = query.where(s.site_id == site_id)
    subnets = list(session.scalars(query))
    if not subnets:
        return []
    sites = {sub.site_id for sub in subnets}
    used_query = (select(a.site_id, a.subnet_id, func.count(distinct(a.ip_key))).where(a.subnet_id.is_not(None))
                  .group_by(a.site_id, a.subnet_id))
    holders_query = select(a.site_id, a.subnet_id, a.ip).where(a.device_owner.like("network:%"))
    if len(sites) <= 500:
        used_query = used_query.where(a.site_id.in_(sites))
        holders_query = holders_query.where(a.site_id.in_(sites))
    used = {(r[0], r[1]): int(r[2]) for r in session.execute(used_query)}
    held = {(r[0], r[1], r[2]) for r in session.execute(holders_query)}  # router and DHCP ports hold gateways
    out = []
    for sub in subnets:
        network = ipaddress.ip_network(sub.cidr)
        gateway = None
        if sub.gateway_ip:
            try:
                gateway = ipaddress.ip_address(sub.gateway_ip)
            except ValueError:
                gateway = None
        count = used.get((sub.site_id, sub.subnet_id), 0)
        in_pool = count - (1 if gateway is not None and (sub.site_id, sub.subnet_id, str(gateway)) in held else 0)
        out.append(SubnetUse(sub.site_id, sub, count, max(0, netmath.neutron_pool_size(network, gateway) - in_pool)))
    return out


def site_freshness(session: Session) -> dict[str, tuple[str, str, datetime | None]]:
    """Site id -> (name, availability, last full refresh: when its network resources were read)."""
    query = (select(Site.id, Site.name, Site.availability, InventorySync.full_at)
             .outerjoin(InventorySync, InventorySync.site_id == Site.id))
    return {r[0]: (r[1], r[2], r[3]) for r in session.execute(query)}


def list_conflicts(session: Session, *, project_id: str | None, kinds: tuple[str, ...] = (), limit: int = 1000,
                   offset: int = 0) -> tuple[list[AddressConflict], int | None]:
    """A page of known conflicts (by kind, then key) and the next page's offset: all (fleet admins),
    or a tenant's: those of its routing domains, and the duplicate public IPs one of whose holders
    is its project (the caller redacts the others)."""
    c = AddressConflict
    query = select(c).order_by(c.kind, c.key)
    if kinds:
        query = query.where(c.kind.in_(kinds))
    if project_id is None:
        rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
        return rows[:limit], offset + limit if len(rows) > limit else None
    rows = list(session.scalars(query.where((c.project_id == project_id) | (c.kind == DUP_PUBLIC))))
    pairs = inventory_queries.project_pairs(session, project_id) if any(r.kind == DUP_PUBLIC for r in rows) else set()
    mine = [r for r in rows if r.kind != DUP_PUBLIC
            or any(belongs(m, project_id, pairs) for m in r.details.get("members", []))]
    return mine[offset:offset + limit], offset + limit if len(mine) > offset + limit else None


def belongs(member: dict[str, Any], project_id: str, pairs: set[tuple[str, str]]) -> bool:
    """Whether a conflict member (an address or a subnet) is of global project ``project_id``."""
    project = member.get("project_id")
    return project == project_id or (member.get("site_id"), project) in pairs


def group_by_site(uses: list[SubnetUse]) -> dict[str, dict[int, list[int]]]:
    """site id -> ip version -> [used, free] totals."""
    totals: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for use in uses:
        entry = totals[use.site_id].setdefault(use.subnet.ip_version, [0, 0])
        entry[0] += use.used
        entry[1] += use.free
    return totals
