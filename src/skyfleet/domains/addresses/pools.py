"""Global IPAM: address pools that hand out non-overlapping per-site prefixes, safe under concurrency.

Why it exists: networks in sites that route together must not reuse a range; a pool such as
``10.128.0.0/9`` or ``fd00:abcd::/48`` gives each site a prefix of the length it asks for, never one
that overlaps another allocation of the pool, whatever the number of API processes and workers.

How it stays safe: an allocation first writes to its pool's row (an ``UPDATE`` that changes
nothing). On PostgreSQL that is a row lock held to the end of the transaction; on SQLite it takes the
database's write lock. Either way, allocations of one pool run one after another, each reading the
allocations committed before it; the first free aligned prefix is found by one walk over them in
address order (O(allocations), never a scan of the candidate prefixes). The unique start of an
allocation per pool is the backstop: a race past the lock fails to commit and is retried.

Existing subnets are adopted into the accounting: a subnet the address view knows inside the pool
(of the pool's project, or the caller's in a shared pool; every project's for a fleet admin in a
shared pool) is never handed out again as a new prefix.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyfleet.domains.addresses import netmath
from skyfleet.domains.addresses.models import AddressAllocation, AddressPool, AddressSubnet
from skyfleet.domains.addresses.service import Caller
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.errors import Conflict, Forbidden, Invalid, NotFound

RETRIES = 5


def first_free(pool: netmath.IPNetwork, taken: list[tuple[int, int]], prefix_length: int) -> netmath.IPNetwork | None:
    """The lowest aligned prefix of ``prefix_length`` inside ``pool`` that overlaps none of ``taken``
    (inclusive integer ranges sorted by start), or None when the pool is exhausted for that length."""
    size = 1 << (pool.max_prefixlen - prefix_length)
    candidate, end = int(pool.network_address), int(pool.broadcast_address)
    for start, last in taken:
        if candidate + size - 1 < start:
            break
        if last >= candidate:
            candidate = ((last + 1 + size - 1) // size) * size  # the next aligned start after ``last``
        if candidate + size - 1 > end:
            return None
    if candidate + size - 1 > end:
        return None
    return ipaddress.ip_network((candidate, prefix_length)) if pool.version == 4 else \
        ipaddress.IPv6Network((candidate, prefix_length))


def existing_subnets(session: Session, *, network: netmath.IPNetwork, project_id: str | None
                     ) -> list[tuple[int, int]]:
    """Ranges of the sites' subnets inside ``network`` (adopted into the pool's accounting, so a
    prefix a site already uses is never handed out): those of ``project_id`` on every site, or every
    project's when None (a fleet admin allocating from a shared pool)."""
    first, last = netmath.key_range(network)
    query = select(AddressSubnet.first_key, AddressSubnet.last_key).where(
        AddressSubnet.ip_version == network.version, AddressSubnet.first_key <= last, AddressSubnet.last_key >= first)
    if project_id is not None:
        query = query.where(inventory_queries.project_clause(session, project_id, site_column=AddressSubnet.site_id,
                                                             project_column=AddressSubnet.project_id))
    return [(int(a, 16), int(b, 16)) for a, b in session.execute(query)]


def _visible(caller: Caller) -> ColumnElement[bool]:
    return true() if caller.project_id is None else or_(AddressPool.project_id == caller.project_id,
                                                        AddressPool.project_id.is_(None))


def get_pool(session: Session, *, ref: str, caller: Caller) -> AddressPool:
    """A pool by id or name: the caller's project's, or a shared one; 404 for another tenant's."""
    found = list(session.scalars(select(AddressPool).where(or_(AddressPool.id == ref, AddressPool.name == ref),
                                                           _visible(caller))))
    by_id = [p for p in found if p.id == ref]
    if by_id:
        return by_id[0]
    if len(found) > 1:
        raise Conflict(f"{len(found)} address pools are named {ref!r}; use the id")
    if not found:
        raise NotFound(f"no address pool {ref!r}")
    return found[0]


def list_pools(session: Session, *, caller: Caller, limit: int, offset: int = 0) -> list[AddressPool]:
    query = select(AddressPool).where(_visible(caller)).order_by(AddressPool.name, AddressPool.id)
    return list(session.scalars(query.offset(offset).limit(limit)))


def create_pool(session: Session, *, name: str, description: str, cidr: str, project: str | None, shared: bool,
                caller: Caller, now: datetime) -> AddressPool:
    """A tenant's pool belongs to its project; a fleet admin's to ``project``, or to none (shared)."""
    network = netmath.parse_cidr(cidr, "cidr")
    if caller.project_id is not None:
        if shared or (project is not None and project != caller.project_id):
            raise Forbidden("a tenant's address pool belongs to its own project; shared pools are for fleet admins")
        project = caller.project_id
    elif shared:
        project = None
    owner = AddressPool.project_id.is_(None) if project is None else AddressPool.project_id == project
    if session.scalar(select(AddressPool.id).where(AddressPool.name == name, owner).limit(1)):
        raise Conflict(f"an address pool named {name!r} already exists in this project")
    for other in session.scalars(select(AddressPool).where(or_(owner, AddressPool.project_id.is_(None)))):
        if ipaddress.ip_network(other.cidr).overlaps(network):
            raise Conflict(f"{network} overlaps the address pool {other.name!r} ({other.cidr})")
    pool = AddressPool(name=name, description=description, project_id=project, cidr=str(network),
                       ip_version=network.version, created_at=now)
    session.add(pool)
    session.flush()
    return pool


def delete_pool(session: Session, *, pool: AddressPool, caller: Caller) -> None:
    if caller.project_id is not None and pool.project_id != caller.project_id:
        raise Forbidden("a shared address pool is removed by fleet admins only")
    used = session.scalar(select(func.count()).where(AddressAllocation.pool_id == pool.id)) or 0
    if used:
        raise Conflict(f"address pool {pool.name!r} still has {used} allocations; release them first")
    session.delete(pool)


def visible_allocations(caller: Caller, pool: AddressPool) -> ColumnElement[bool]:
    """Allocations a caller sees: all (admins, the pool's owner), else its own (a shared pool)."""
    if caller.project_id is None or pool.project_id == caller.project_id:
        return AddressAllocation.pool_id == pool.id
    return (AddressAllocation.pool_id == pool.id) & (AddressAllocation.project_id == caller.project_id)


def list_allocations(session: Session, *, pool: AddressPool, caller: Caller, limit: int,
                     offset: int = 0) -> list[AddressAllocation]:
    query = select(AddressAllocation).where(visible_allocations(caller, pool)).order_by(
        AddressAllocation.first_key, AddressAllocation.id)
    return list(session.scalars(query.offset(offset).limit(limit)))


def allocate(session: Session, *, pool_id: str, site_id: str, prefix_length: int, caller: Caller,
             now: datetime) -> AddressAllocation:
    """Hand ``site_id`` the first free prefix of ``prefix_length``; 409 when the pool has none left.

    Must be the first write of its transaction (the pool's lock; see the module docstring).
    """
    for _ in range(RETRIES):
        locked = session.execute(update(AddressPool).where(AddressPool.id == pool_id)
                                 .values(id=AddressPool.id).execution_options(synchronize_session=False))
        if getattr(locked, "rowcount", 1) == 0:
            raise NotFound(f"no address pool {pool_id!r}")
        pool = session.get(AddressPool, pool_id)
        if pool is None:
            raise NotFound(f"no address pool {pool_id!r}")
        network = ipaddress.ip_network(pool.cidr)
        if not network.prefixlen <= prefix_length <= network.max_prefixlen:
            raise Invalid(f"prefix_length: {prefix_length} is outside {network.prefixlen}..{network.max_prefixlen} "
                          f"for the pool {pool.cidr}")
        taken = [(int(a, 16), int(b, 16)) for a, b in session.execute(
            select(AddressAllocation.first_key, AddressAllocation.last_key)
            .where(AddressAllocation.pool_id == pool_id).order_by(AddressAllocation.first_key))]
        in_use = existing_subnets(session, network=network, project_id=pool.project_id or caller.project_id)
        prefix = first_free(network, sorted(taken + in_use), prefix_length)
        if prefix is None:
            raise Conflict(f"address pool {pool.name!r} ({pool.cidr}) has no free /{prefix_length} left "
                           f"({len(taken)} prefixes allocated, {len(in_use)} subnets already in the sites)")
        first, last = netmath.key_range(prefix)
        row = AddressAllocation(pool_id=pool_id, site_id=site_id, project_id=caller.project_id, cidr=str(prefix),
                                first_key=first, last_key=last, created_at=now)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # another allocation took this start first: read again
        return row
    raise Conflict("address pool busy: too many concurrent allocations, retry")


def release(session: Session, *, pool: AddressPool, allocation_id: int, caller: Caller) -> None:
    """Give a prefix back to the pool; 404 when the caller does not see it."""
    done = session.execute(delete(AddressAllocation).where(AddressAllocation.id == allocation_id,
                                                           visible_allocations(caller, pool))
                           .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) == 0:
        raise NotFound(f"no allocation {allocation_id} in address pool {pool.name!r}")
