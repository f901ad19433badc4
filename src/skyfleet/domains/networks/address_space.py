"""Explicit CIDRs of a declared network against the address space Skyfleet already manages.

Why it exists: a network declared with ``cidrs`` numbers its sites itself, and nothing stopped that
numbering from duplicating a prefix an address pool had handed out, or a subnet of the project's
networks on another site: the conflicts view would only report it after the sites were built. Each
new explicit CIDR is checked here, in the transaction that declares it (docs/networks.md#explicit-cidrs):

- **pools**: every pool the network's project uses (its own and the shared ones) whose range
  overlaps the CIDR. An overlap with an allocation is refused (409); a CIDR that straddles a pool's
  edge is refused; a CIDR inside a pool and free there is **reserved** in it as an allocation of the
  site, so the pool never hands it out later (released when the network is deleted). The pool's
  "no two live allocations overlap" stays true whatever was declared. ``allow_overlap`` never skips
  this part.
- **routable subnets**: subnets of the address view (the last inventory refresh) that would route
  with the network: the network's project's subnets on every site (a declared network is one
  address space across its sites, and its router may join the others), and every network of a
  routing domain the network belongs to (a ``{"project": P}`` member, or a member naming one of its
  per-site networks). Also the CIDRs of the project's other declared networks, which the inventory
  may not show yet. ``allow_overlap: true`` skips this part (a deliberate reuse, recorded on the
  network).

What a 409 names: details (site, network, CIDR, pool) only of what the caller may see (its project's
networks and allocations; a fleet admin sees all); otherwise "overlaps an address range in use".

Race safety: the same mechanism as pool allocations. The check's first write is a lock: a pool's
row (an ``UPDATE`` that changes nothing) for every pool it reads, and, as declarations outside any
pool have no pool row, one fleet-wide lock for explicit CIDRs (on PostgreSQL a transaction-scoped
advisory lock, on SQLite the database's write lock taken by a write that changes nothing), held to
commit. Two declarations therefore run one after the other, each reading what the other committed.
The pools' unique ``(pool, first address)`` stays the backstop of a reservation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyfleet.domains.addresses import netmath
from skyfleet.domains.addresses.models import (
    AddressAllocation,
    AddressPool,
    AddressSubnet,
    RoutingDomain,
    RoutingDomainMember,
    RoutingDomainNetwork,
)
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.errors import Conflict

KIND = "network"
LOCK_KEY = 0x5F1EE7_C1D  # PostgreSQL advisory lock: explicit-CIDR declarations one at a time
IN_USE = "overlaps an address range in use"


def lock(session: Session) -> None:
    """Declarations with explicit CIDRs one at a time, across processes, until commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:  # SQLite: a write that changes nothing takes the database's write lock, as a pool's does
        session.execute(update(AddressPool).where(AddressPool.id == "").values(id=AddressPool.id)
                        .execution_options(synchronize_session=False))


def _keys(network: netmath.IPNetwork) -> tuple[str, str]:
    return netmath.key_range(network)


def _site_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    return {sid: name for sid, name in session.execute(select(Site.id, Site.name).where(Site.id.in_(wanted)))} \
        if wanted else {}


def _holder(session: Session, allocation_id: int, project_id: str | None, admin: bool) -> str | None:
    """The declared network (visible to the caller) holding a pool allocation, by name."""
    query = select(SyncResource).where(SyncResource.kind == KIND)
    if not admin:
        query = query.where(SyncResource.scope == (project_id or ""))
    for resource in session.scalars(query):
        options = resource.options or {}
        held = [p.get(k) for p in (options.get("prefixes") or {}).values()
                for k in ("allocation_id", "allocation_id2")]
        held += [r.get("allocation_id") for r in (options.get("reservations") or {}).values()]
        if allocation_id in held:
            return resource.name
    return None


def _check_pools(session: Session, *, label: str, network: netmath.IPNetwork, site_id: str,
                 project_id: str | None, admin: bool, now: datetime) -> dict[str, Any] | None:
    """Refuse an overlap with a live allocation; reserve the CIDR in the pool that holds it."""
    owner = or_(AddressPool.project_id == project_id, AddressPool.project_id.is_(None)) if project_id \
        else AddressPool.project_id.is_(None)
    candidates = [p for p in session.scalars(select(AddressPool).where(owner, AddressPool.ip_version ==
                                                                       network.version).order_by(AddressPool.id))
                  if ipaddress.ip_network(p.cidr).overlaps(network)]
    reserved: dict[str, Any] | None = None
    first, last = _keys(network)
    for pool in candidates:  # in id order, as a network's pool takes are: never crosswise
        session.execute(update(AddressPool).where(AddressPool.id == pool.id).values(id=AddressPool.id)
                        .execution_options(synchronize_session=False))
        rows = list(session.scalars(select(AddressAllocation).where(
            AddressAllocation.pool_id == pool.id, AddressAllocation.first_key <= last,
            AddressAllocation.last_key >= first).order_by(AddressAllocation.first_key).limit(1)))
        if rows:
            row = rows[0]
            visible = admin or (project_id is not None and project_id in (pool.project_id, row.project_id))
            if not visible:
                raise Conflict(f"{label} {IN_USE} (allocated from the address pool {pool.name!r}); choose "
                               "another CIDR")
            holder = _holder(session, row.id, project_id, admin)
            site = _site_names(session, [row.site_id]).get(row.site_id, row.site_id)
            by = f" for the network {holder!r}" if holder else ""
            raise Conflict(f"{label} overlaps {row.cidr}, allocated from the address pool {pool.name!r} "
                           f"({pool.cidr}) to site {site}{by} (allocation {row.id}); choose another CIDR")
        pool_range = ipaddress.ip_network(pool.cidr)
        if not network.subnet_of(pool_range):  # type: ignore[arg-type]
            raise Conflict(f"{label} straddles the edge of the address pool {pool.name!r} ({pool.cidr}); a CIDR "
                           "is either inside a pool (and reserved there) or outside it")
        allocation = AddressAllocation(pool_id=pool.id, site_id=site_id, project_id=project_id, cidr=str(network),
                                       first_key=first, last_key=last, created_at=now)
        try:
            with session.begin_nested():
                session.add(allocation)
        except IntegrityError:
            raise Conflict(f"{label} {IN_USE} (address pool {pool.name!r} is busy); retry") from None
        reserved = {"pool_id": pool.id, "pool": pool.name, "allocation_id": allocation.id, "cidr": str(network)}
    return reserved


def _domains_of(session: Session, *, project_id: str | None, resource_id: str | None) -> list[str]:
    """Routing domains the network is part of: a ``{"project": P}`` member of its project, or a member
    naming one of its per-site networks (a PATCH of a network made already)."""
    ids: set[str] = set()
    if project_id:
        ids |= set(session.scalars(select(RoutingDomainMember.domain_id).where(
            RoutingDomainMember.project_id == project_id)))
    if resource_id:
        made = [(b.site_id, b.remote_id) for b in session.scalars(select(SyncBinding).where(
            SyncBinding.resource_id == resource_id, SyncBinding.remote_id.is_not(None)))]
        if made:
            ids |= set(session.scalars(select(RoutingDomainNetwork.domain_id).where(
                tuple_(RoutingDomainNetwork.site_id, RoutingDomainNetwork.network_id).in_(made))))
    return sorted(ids)


def _own_networks(session: Session, resource_id: str | None) -> set[tuple[str, str]]:
    if not resource_id:
        return set()
    return {(b.site_id, str(b.remote_id)) for b in session.scalars(select(SyncBinding).where(
        SyncBinding.resource_id == resource_id, SyncBinding.remote_id.is_not(None)))}


def _network_name(session: Session, site_id: str, network_id: str | None) -> str | None:
    if not network_id:
        return None
    found = session.scalar(select(InventoryItem.name).where(
        InventoryItem.site_id == site_id, InventoryItem.kind == "networks", InventoryItem.remote_id == network_id))
    return found or None


def _check_declared(*, label: str, network: netmath.IPNetwork, session: Session, project_id: str | None,
                    resource_id: str | None) -> None:
    """The project's other declared networks: their CIDRs are routable with this one even before the
    inventory sees them (a network declared a second ago)."""
    for other in session.scalars(select(SyncResource).where(SyncResource.kind == KIND,
                                                            SyncResource.scope == (project_id or ""))
                                 .order_by(SyncResource.name)):
        if other.id == resource_id:
            continue
        options = other.options or {}
        cidrs: dict[str, str] = dict(options.get("cidrs") or {})
        for sid, held in (options.get("prefixes") or {}).items():
            for key in ("cidr", "cidr2"):
                if held.get(key):
                    cidrs.setdefault(f"{sid}:{key}", held[key])
        for sid, cidr in sorted(cidrs.items()):
            if ipaddress.ip_network(cidr).overlaps(network):
                site_id = sid.split(":")[0]
                site = _site_names(session, [site_id]).get(site_id, site_id)
                raise Conflict(f"{label} overlaps {cidr} of the network {other.name!r} (site {site}), declared in "
                               "Skyfleet; choose another CIDR, or allow_overlap: true for a deliberate reuse")


def _check_subnets(session: Session, *, label: str, network: netmath.IPNetwork, project_id: str | None,
                   admin: bool, resource_id: str | None) -> None:
    """Subnets of the address view routable with the network (module docstring)."""
    first, last = _keys(network)
    own = _own_networks(session, resource_id)
    base = select(AddressSubnet).where(AddressSubnet.ip_version == network.version,
                                       AddressSubnet.first_key <= last, AddressSubnet.last_key >= first)
    mine = inventory_queries.project_clause(session, project_id, site_column=AddressSubnet.site_id,
                                            project_column=AddressSubnet.project_id) if project_id else None
    groups: list[tuple[Any, bool, str]] = []
    if mine is not None:
        groups.append((base.where(mine), True, "a network of the project"))
    domains = _domains_of(session, project_id=project_id, resource_id=resource_id)
    if domains:
        members = select(RoutingDomainNetwork.site_id, RoutingDomainNetwork.network_id).where(
            RoutingDomainNetwork.domain_id.in_(domains))
        groups.append((base.where(tuple_(AddressSubnet.site_id, AddressSubnet.network_id).in_(members)), admin,
                       "in a routing domain of the network"))
    for query, detailed, why in groups:
        for subnet in session.scalars(query.order_by(AddressSubnet.site_id, AddressSubnet.first_key)):
            if (subnet.site_id, subnet.network_id) in own:
                continue
            if not detailed:  # another project's network: the caller learns nothing of it
                raise Conflict(f"{label} {IN_USE} ({why}, as of the last inventory refresh); choose another CIDR")
            site = _site_names(session, [subnet.site_id]).get(subnet.site_id, subnet.site_id)
            name = _network_name(session, subnet.site_id, subnet.network_id) or subnet.network_id
            domain = ""
            if domains and why.startswith("in a routing"):
                names = sorted(session.scalars(select(RoutingDomain.name).where(RoutingDomain.id.in_(domains))))
                domain = f" {', '.join(repr(n) for n in names)}"
            raise Conflict(f"{label} overlaps the subnet {subnet.cidr} of the network {name!r} in site {site} "
                           f"({why}{domain}, as of the last inventory refresh), which would route with it; choose "
                           "another CIDR, or allow_overlap: true for a deliberate reuse")


def guard(session: Session, *, cidrs: dict[str, str], project_id: str | None, admin: bool, allow_overlap: bool,
          resource_id: str | None, now: datetime) -> dict[str, dict[str, Any]]:
    """Check each new explicit CIDR (site id -> cidr) against the managed address space and reserve
    those inside a pool; returns site id -> the reservation (pool id and name, allocation id, cidr).
    409 with the reason (module docstring). Call it at the start of the declaring transaction."""
    lock(session)
    names = _site_names(session, cidrs)
    reservations: dict[str, dict[str, Any]] = {}
    for site_id, cidr in sorted(cidrs.items(), key=lambda kv: names.get(kv[0], kv[0])):
        network = ipaddress.ip_network(cidr)
        label = f"cidrs.{names.get(site_id, site_id)}: {network}"
        held = _check_pools(session, label=label, network=network, site_id=site_id, project_id=project_id,
                            admin=admin, now=now)
        if held is not None:
            reservations[site_id] = held
        if not allow_overlap:
            _check_declared(label=label, network=network, session=session, project_id=project_id,
                            resource_id=resource_id)
            _check_subnets(session, label=label, network=network, project_id=project_id, admin=admin,
                           resource_id=resource_id)
    return reservations


def reservation_ids(resource: SyncResource) -> list[int]:
    return [int(r["allocation_id"]) for r in (resource.options.get("reservations") or {}).values()
            if r.get("allocation_id") is not None]
