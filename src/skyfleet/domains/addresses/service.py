"""Routing domains: declare which networks across sites are meant to route to one another.

Keyword-only functions over an explicit session; they never commit. A tenant's domains belong to
its own project and may only name networks the inventory shows in that project (so that a domain
can never reveal another tenant's addresses through its conflicts); a fleet admin's may name any
network and belong to any project, or to none (a fleet-wide domain).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, true
from sqlalchemy.orm import Session

from skyfleet.domains.addresses.models import (
    AddressConflict,
    RoutingDomain,
    RoutingDomainMember,
    RoutingDomainNetwork,
)
from skyfleet.domains.addresses.schemas import Member
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.sites.models import Site
from skyfleet.errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class Caller:
    """Who declares: ``project_id`` None is a fleet admin (any project, any network)."""

    project_id: str | None


def _visible(caller: Caller) -> ColumnElement[bool]:
    return true() if caller.project_id is None else RoutingDomain.project_id == caller.project_id


def get(session: Session, *, ref: str, caller: Caller) -> RoutingDomain:
    """A domain by id, or by name among those the caller sees; 404 for another tenant's."""
    found = list(session.scalars(select(RoutingDomain).where(
        or_(RoutingDomain.id == ref, RoutingDomain.name == ref), _visible(caller))))
    by_id = [d for d in found if d.id == ref]
    if by_id:
        return by_id[0]
    if len(found) > 1:
        raise Conflict(f"{len(found)} routing domains are named {ref!r}; use the id")
    if not found:
        raise NotFound(f"no routing domain {ref!r}")
    return found[0]


def list_domains(session: Session, *, caller: Caller, limit: int, offset: int = 0) -> list[RoutingDomain]:
    return list(session.scalars(select(RoutingDomain).where(_visible(caller))
                                .order_by(RoutingDomain.name, RoutingDomain.id).offset(offset).limit(limit)))


def members_of(session: Session, domain_ids: list[str]) -> dict[str, list[tuple[RoutingDomainMember, str | None]]]:
    """domain id -> [(member, site name)]."""
    found: dict[str, list[tuple[RoutingDomainMember, str | None]]] = defaultdict(list)
    if domain_ids:
        query = (select(RoutingDomainMember, Site.name).outerjoin(Site, Site.id == RoutingDomainMember.site_id)
                 .where(RoutingDomainMember.domain_id.in_(domain_ids)).order_by(RoutingDomainMember.id))
        for member, site_name in session.execute(query):
            found[member.domain_id].append((member, site_name))
    return found


def counts(session: Session, domain_ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(resolved networks, known conflicts) per domain id."""
    if not domain_ids:
        return {}, {}
    networks = dict(session.execute(select(RoutingDomainNetwork.domain_id, func.count())
                                    .where(RoutingDomainNetwork.domain_id.in_(domain_ids))
                                    .group_by(RoutingDomainNetwork.domain_id)).all())
    conflicts = dict(session.execute(select(AddressConflict.domain_id, func.count())
                                     .where(AddressConflict.domain_id.in_(domain_ids))
                                     .group_by(AddressConflict.domain_id)).all())
    return {k: int(v) for k, v in networks.items()}, {str(k): int(v) for k, v in conflicts.items()}


def _site_ids(session: Session, refs: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for site_id, name in session.execute(select(Site.id, Site.name).where(or_(Site.id.in_(refs),
                                                                               Site.name.in_(refs)))):
        found[site_id] = site_id
        found[name] = site_id
    missing = sorted(refs - set(found))
    if missing:
        raise Invalid(f"members: no site with id or name {missing[0]!r}")
    return found


def _resolve(session: Session, members: list[Member], owner: str | None, caller: Caller
             ) -> list[RoutingDomainMember]:
    sites = _site_ids(session, {m.site for m in members if m.site is not None})
    rows: list[RoutingDomainMember] = []
    seen: set[tuple[str | None, str | None, str | None]] = set()
    for member in members:
        if member.project is not None:
            if caller.project_id is not None and member.project != caller.project_id:
                raise Invalid("members: a tenant's routing domain may name only its own project")
            key: tuple[str | None, str | None, str | None] = (None, None, member.project)
        else:
            key = (sites[member.site or ""], member.network, None)
        if key not in seen:
            seen.add(key)
            rows.append(RoutingDomainMember(site_id=key[0], network_id=key[1], project_id=key[2]))
    if caller.project_id is not None:
        _check_own_networks(session, [(r.site_id, r.network_id) for r in rows if r.site_id and r.network_id],
                            caller.project_id)
    return rows


def _check_own_networks(session: Session, pairs: list[tuple[str, str]], project_id: str) -> None:
    """A tenant names only networks of its project, as the inventory last saw them."""
    if not pairs:
        return
    clause = inventory_queries.project_clause(session, project_id)
    mine = {(r[0], r[1]) for r in session.execute(select(InventoryItem.site_id, InventoryItem.remote_id).where(
        InventoryItem.kind == "networks", InventoryItem.site_id.in_({p[0] for p in pairs}),
        InventoryItem.remote_id.in_({p[1] for p in pairs}), clause))}
    for site_id, network_id in pairs:
        if (site_id, network_id) not in mine:
            raise Invalid(f"members: network {network_id!r} is not a network of your project on that site "
                          "(as of the last inventory refresh)")


def _unique_name(session: Session, name: str, project_id: str | None, exclude: str | None = None) -> None:
    query = select(RoutingDomain.id).where(RoutingDomain.name == name, RoutingDomain.project_id.is_(None)
                                           if project_id is None else RoutingDomain.project_id == project_id)
    if exclude is not None:
        query = query.where(RoutingDomain.id != exclude)
    if session.scalar(query.limit(1)) is not None:
        raise Conflict(f"a routing domain named {name!r} already exists in this project")


def create(session: Session, *, name: str, description: str, project: str | None, members: list[Member],
           caller: Caller, now: datetime) -> RoutingDomain:
    """Declare a domain; a tenant's belongs to its project whatever ``project`` says (another is 400)."""
    if caller.project_id is not None:
        if project is not None and project != caller.project_id:
            raise Invalid("project: a tenant declares routing domains of its own project only")
        project = caller.project_id
    _unique_name(session, name, project)
    domain = RoutingDomain(name=name, description=description, project_id=project, created_at=now, updated_at=now)
    session.add(domain)
    session.flush()
    for row in _resolve(session, members, project, caller):
        row.domain_id = domain.id
        session.add(row)
    return domain


def update(session: Session, *, domain: RoutingDomain, name: str | None, description: str | None,
           members: list[Member] | None, caller: Caller, now: datetime) -> RoutingDomain:
    if name is not None and name != domain.name:
        _unique_name(session, name, domain.project_id, exclude=domain.id)
        domain.name = name
    if description is not None:
        domain.description = description
    if members is not None:
        rows = _resolve(session, members, domain.project_id, caller)
        session.execute(delete(RoutingDomainMember).where(RoutingDomainMember.domain_id == domain.id))
        for row in rows:
            row.domain_id = domain.id
            session.add(row)
    domain.updated_at = now
    return domain


def remove(session: Session, *, domain: RoutingDomain) -> None:
    """Forget a domain (its members and resolved networks go with it; its conflicts clear at detection)."""
    session.delete(domain)
