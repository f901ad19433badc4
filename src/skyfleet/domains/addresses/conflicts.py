"""Find address conflicts, keep the known set, and raise an event when one appears or goes away.

Why it exists: a conflict is only useful if it is noticed once and cleared once. Detection runs
after every inventory refresh that changed a site's network resources and after every change of a
routing domain; it recomputes the whole set with a few set-based queries (GROUP BY over the derived
``address_items``, one sweep over ``address_subnets``), compares it with ``address_conflicts`` by
stable key, and records ``address.conflict`` for new keys and ``address.conflict_cleared`` for keys
that disappeared. Cost grows with the number of addresses and subnets in routing domains, never with
the number of pairs that overlap (overlaps are found by a sorted sweep).

The rules (docs/addresses.md):

- overlapping subnet CIDRs of different networks in one routing domain (same site or not);
- one fixed IP on two or more networks of one routing domain;
- one MAC on two or more sites of one routing domain;
- one floating or router gateway (public) IP on two or more sites, whatever the domain.

Without a declared routing domain, a project's networks are not compared with one another: tenant
networks are isolated by default in Neutron and reusing 10.0.0.0/24 on every site is normal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, distinct, func, insert, select, text, update
from sqlalchemy.orm import Session

from skyfleet.domains.addresses import netmath
from skyfleet.domains.addresses.models import (
    AddressConflict,
    AddressItem,
    AddressSubnet,
    RoutingDomain,
    RoutingDomainMember,
    RoutingDomainNetwork,
)
from skyfleet.domains.events import service as events
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.quotas.models import QuotaSiteState
from skyfleet.domains.sites.models import Site

OVERLAP, DUP_IP, DUP_MAC, DUP_PUBLIC = "overlapping_subnets", "duplicate_ip", "duplicate_mac", "duplicate_public_ip"
KINDS = (OVERLAP, DUP_IP, DUP_MAC, DUP_PUBLIC)
PUBLIC_KINDS = ("floating", "gateway")
MEMBERS_SHOWN = 50  # a conflict lists at most this many members (with the full count)
LOCK_KEY = 0x5F1EE7_AD  # PostgreSQL advisory lock: one detection at a time across processes
CHUNK = 500


@dataclass
class Found:
    kind: str
    domain_id: str | None
    project_id: str | None
    summary: str
    members: list[dict[str, Any]]
    projects: set[str | None] = field(default_factory=set)
    count: int = 0  # every member, when ``members`` holds only the first MEMBERS_SHOWN

    def details(self) -> dict[str, Any]:
        return {"members": self.members[:MEMBERS_SHOWN], "count": max(self.count, len(self.members))}


@dataclass
class DetectReport:
    conflicts: int = 0
    raised: int = 0
    cleared: int = 0
    domain_networks: int = 0


def _lock(session: Session) -> None:
    """One detection at a time: two would both insert a new conflict's key (and both raise its event).

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write that changes nothing takes the
    database's write lock before anything is read.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:
        session.execute(update(AddressConflict).where(AddressConflict.id == -1).values(kind=AddressConflict.kind)
                        .execution_options(synchronize_session=False))


def resolve_networks(session: Session) -> int:
    """Bring ``routing_domain_networks`` in line with the declared members; returns its size."""
    wanted: set[tuple[str, str, str]] = set()
    by_project: dict[str, set[str]] = defaultdict(set)
    for domain_id, site_id, network_id, project in session.execute(select(
            RoutingDomainMember.domain_id, RoutingDomainMember.site_id, RoutingDomainMember.network_id,
            RoutingDomainMember.project_id)):
        if project is not None:
            by_project[project].add(domain_id)
        elif site_id is not None and network_id is not None:
            wanted.add((domain_id, site_id, network_id))
    for project, domains in by_project.items():
        clause = inventory_queries.project_clause(session, project)
        for site_id, network_id in session.execute(select(InventoryItem.site_id, InventoryItem.remote_id).where(
                InventoryItem.kind == "networks", clause)):
            wanted |= {(domain_id, site_id, network_id) for domain_id in domains}
    stored = {tuple(r) for r in session.execute(select(
        RoutingDomainNetwork.domain_id, RoutingDomainNetwork.site_id, RoutingDomainNetwork.network_id))}
    for domain_id, site_id, network_id in stored - wanted:
        session.execute(delete(RoutingDomainNetwork).where(
            RoutingDomainNetwork.domain_id == domain_id, RoutingDomainNetwork.site_id == site_id,
            RoutingDomainNetwork.network_id == network_id))
    new = [{"domain_id": d, "site_id": s, "network_id": n} for d, s, n in wanted - stored]
    for start in range(0, len(new), CHUNK):
        session.execute(insert(RoutingDomainNetwork), new[start:start + CHUNK])
    return len(wanted)


def _member(row: Any, site_names: dict[str, str]) -> dict[str, Any]:
    return {"site_id": row.site_id, "site": site_names.get(row.site_id, row.site_id), "project_id": row.project_id,
            "kind": row.kind, "ip": row.ip, "mac": row.mac, "network_id": row.network_id,
            "subnet_id": row.subnet_id, "port_id": row.port_id, "device_id": row.device_id,
            "device_name": row.device_name}


def _columns() -> list[Any]:
    a = AddressItem
    return [a.site_id, a.project_id, a.kind, a.ip, a.mac, a.network_id, a.subnet_id, a.port_id, a.device_id,
            a.device_name, a.ip_version, a.ip_key]


def _first_members(session: Session, groups: Any, group_columns: list[Any], joined: Any) -> Any:
    """The address rows of each group (a domain and an address or MAC), the first MEMBERS_SHOWN of each
    by site, with the group's full count: a window over the rows in the database instead of every
    row in Python (a fixed IP reused on 1,000 sites of a domain is one conflict of 1,000 members)."""
    a, n = AddressItem, RoutingDomainNetwork
    partition = [groups.c.domain_id, *group_columns]
    order = [a.site_id, a.network_id, a.kind, a.source_id, a.ip]
    ranked = (select(groups.c.domain_id.label("domain_id"), *_columns(),
                     func.row_number().over(partition_by=partition, order_by=order).label("rank"),
                     func.count().over(partition_by=partition).label("total"))
              .join(n, n.domain_id == groups.c.domain_id).join(a, joined).subquery())
    return session.execute(select(ranked).where(ranked.c.rank <= MEMBERS_SHOWN)
                           .order_by(*[ranked.c[c.name] for c in (ranked.c.domain_id, *group_columns)],
                                     ranked.c.rank))


def _domain_duplicates(session: Session, domains: dict[str, tuple[str, str | None]],
                       site_names: dict[str, str]) -> dict[str, Found]:
    """Fixed IPs on two networks, and MACs on two sites, of one routing domain."""
    a, n = AddressItem, RoutingDomainNetwork
    joined = and_(n.site_id == a.site_id, n.network_id == a.network_id)
    place = a.site_id + " " + func.coalesce(a.network_id, "")
    found: dict[str, Found] = {}
    dup_ip = (select(n.domain_id, a.ip_version, a.ip_key).join(a, joined).where(a.kind == "fixed")
              .group_by(n.domain_id, a.ip_version, a.ip_key).having(func.count(distinct(place)) > 1).subquery())
    rows = _first_members(session, dup_ip, [dup_ip.c.ip_version, dup_ip.c.ip_key],
                          and_(joined, a.kind == "fixed", a.ip_version == dup_ip.c.ip_version,
                               a.ip_key == dup_ip.c.ip_key))
    for row in rows:
        name, owner = domains[row.domain_id]
        key = f"ip:{row.domain_id}:{row.ip}"
        entry = found.get(key) or found.setdefault(key, Found(
            DUP_IP, row.domain_id, owner, f"{row.ip} is used on several networks of routing domain {name!r}", [],
            count=row.total))
        entry.members.append(_member(row, site_names))
    dup_mac = (select(n.domain_id, a.mac).join(a, joined).where(a.kind == "fixed", a.mac.is_not(None))
               .group_by(n.domain_id, a.mac).having(func.count(distinct(a.site_id)) > 1).subquery())
    rows = _first_members(session, dup_mac, [dup_mac.c.mac], and_(joined, a.kind == "fixed", a.mac == dup_mac.c.mac))
    for row in rows:
        name, owner = domains[row.domain_id]
        key = f"mac:{row.domain_id}:{row.mac}"
        entry = found.get(key) or found.setdefault(key, Found(
            DUP_MAC, row.domain_id, owner, f"MAC {row.mac} is used on several sites of routing domain {name!r}", [],
            count=row.total))
        entry.members.append(_member(row, site_names))
    return found


def _public_duplicates(session: Session, site_names: dict[str, str]) -> dict[str, Found]:
    """Floating and gateway IPs held on two or more sites."""
    a = AddressItem
    dup = (select(a.ip_version, a.ip_key).where(a.kind.in_(PUBLIC_KINDS)).group_by(a.ip_version, a.ip_key)
           .having(func.count(distinct(a.site_id)) > 1).subquery())
    query = (select(*_columns()).join(dup, and_(a.ip_version == dup.c.ip_version, a.ip_key == dup.c.ip_key))
             .where(a.kind.in_(PUBLIC_KINDS)).order_by(a.ip_version, a.ip_key, a.site_id))
    found: dict[str, Found] = {}
    for row in session.execute(query):
        key = f"public:{row.ip}"
        entry = found.get(key) or found.setdefault(key, Found(
            DUP_PUBLIC, None, None, f"public IP {row.ip} is held on several sites", []))
        entry.members.append(_member(row, site_names))
        entry.projects.add(row.project_id)
    return found


def _overlaps(session: Session, domains: dict[str, tuple[str, str | None]],
              site_names: dict[str, str]) -> dict[str, Found]:
    """Subnets of different networks of one routing domain whose CIDRs overlap."""
    s, n = AddressSubnet, RoutingDomainNetwork
    query = (select(n.domain_id, s.site_id, s.network_id, s.subnet_id, s.cidr, s.ip_version, s.first_key,
                    s.last_key, s.project_id)
             .join(s, and_(s.site_id == n.site_id, s.network_id == n.network_id)))
    per_domain: dict[str, list[netmath.Span]] = defaultdict(list)
    for row in session.execute(query):
        per_domain[row.domain_id].append(netmath.Span(row.ip_version, int(row.first_key, 16), int(row.last_key, 16),
                                                      row))
    found: dict[str, Found] = {}
    for domain_id, spans in per_domain.items():
        name, owner = domains[domain_id]
        for group in netmath.overlap_groups(spans):
            rows = [span.ref for span in group]
            if len({(r.site_id, r.network_id) for r in rows}) < 2:
                continue  # subnets of one network never overlap in Neutron; nothing routes twice
            first = netmath.address_of(group[0].version, min(sp.first for sp in group))
            last = netmath.address_of(group[0].version, max(sp.last for sp in group))
            cidrs = sorted({r.cidr for r in rows})
            found[f"overlap:{domain_id}:{first}-{last}"] = Found(
                OVERLAP, domain_id, owner, f"subnets {', '.join(cidrs[:5])} overlap in routing domain {name!r}",
                [{"site_id": r.site_id, "site": site_names.get(r.site_id, r.site_id), "project_id": r.project_id,
                  "network_id": r.network_id, "subnet_id": r.subnet_id, "cidr": r.cidr}
                 for r in rows[:MEMBERS_SHOWN]], count=len(rows))
    return found


def current(session: Session) -> dict[str, Found]:
    """Every conflict the store shows now (routing domain networks resolved first)."""
    domains = {r.id: (r.name, r.project_id) for r in session.execute(
        select(RoutingDomain.id, RoutingDomain.name, RoutingDomain.project_id))}
    site_names = {r.id: r.name for r in session.execute(select(Site.id, Site.name))}
    found = _public_duplicates(session, site_names)
    if domains:
        found.update(_domain_duplicates(session, domains, site_names))
        found.update(_overlaps(session, domains, site_names))
    return found


def _global_projects(session: Session) -> dict[tuple[str, str | None], str]:
    """(site id, remote project id) -> global project id, for the sites that share nothing."""
    pairs = {(r[0], r[1]): r[2] for r in session.execute(select(
        QuotaSiteState.site_id, QuotaSiteState.remote_project_id, QuotaSiteState.project_id)
        .where(QuotaSiteState.remote_project_id.is_not(None)))}
    pairs.update({(r[0], r[1]): r[2] for r in session.execute(select(
        ProjectMapping.site_id, ProjectMapping.remote_project_id, ProjectMapping.project_id))})
    return pairs


def _event_projects(kind: str, owner: str | None, members: list[dict[str, Any]],
                    mapping: dict[tuple[str, str | None], str]) -> list[str | None]:
    """Who hears of a conflict: the domain's owner; for a public IP, fleet admins and each project
    that holds one of the addresses (by its global id)."""
    if kind != DUP_PUBLIC:
        return [owner]
    projects = {mapping.get((m["site_id"], m["project_id"]), m["project_id"]) for m in members
                if m.get("project_id")}
    return [None, *sorted(projects)]


def _message(kind: str, key: str, summary: str, project: str | None, cleared: bool) -> str:
    if project is None or kind != DUP_PUBLIC:
        return f"cleared: {summary}" if cleared else summary
    address = key.split(":", 1)[1]  # a tenant hears of its own address, never where the other one is
    return (f"public IP {address} is no longer held on another site" if cleared
            else f"public IP {address} of your project is also held on another site")


def detect(session: Session, *, now: datetime) -> DetectReport:
    """Recompute the conflicts, store the difference and record its events (the caller's transaction)."""
    _lock(session)
    report = DetectReport(domain_networks=resolve_networks(session))
    session.flush()
    found = current(session)
    known = {c.key: c for c in session.scalars(select(AddressConflict))}
    public = any(f.kind == DUP_PUBLIC for f in found.values()) or any(c.kind == DUP_PUBLIC for c in known.values())
    mapping = _global_projects(session) if public else {}
    for key, item in found.items():
        stored = known.get(key)
        details = item.details()
        if stored is not None:
            if stored.details != details or stored.summary != item.summary:
                stored.details, stored.summary = details, item.summary
            stored.last_seen_at = now
            continue
        session.add(AddressConflict(key=key, kind=item.kind, domain_id=item.domain_id, project_id=item.project_id,
                                    summary=item.summary, details=details, first_seen_at=now, last_seen_at=now))
        for project in _event_projects(item.kind, item.project_id, item.members, mapping):
            events.record(session, kind="address.conflict", severity="warning", project_id=project,
                          message=_message(item.kind, key, item.summary, project, cleared=False),
                          details={"key": key, "conflict": item.kind, "domain_id": item.domain_id}, at=now)
        report.raised += 1
    for key, stored in known.items():
        if key in found:
            continue
        for project in _event_projects(stored.kind, stored.project_id, stored.details.get("members", []), mapping):
            events.record(session, kind="address.conflict_cleared", project_id=project,
                          message=_message(stored.kind, key, stored.summary, project, cleared=True),
                          details={"key": key, "conflict": stored.kind, "domain_id": stored.domain_id}, at=now)
        session.delete(stored)
        report.cleared += 1
    report.conflicts = len(found)
    return report
