"""/v1/address-pools: global IPAM, pools that hand each site a non-overlapping prefix.

A tenant's pools belong to its project; a fleet admin's belong to a project or are shared (every
tenant allocates from them and sees only its own allocations there). Allocation and release are
writes of one pool row and one allocation row, serialized per pool (domains/addresses/pools.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import pools
from skyfleet.domains.addresses.models import AddressAllocation, AddressPool
from skyfleet.domains.addresses.schemas import (
    AllocationIn,
    AllocationList,
    AllocationOut,
    PoolIn,
    PoolList,
    PoolOut,
)
from skyfleet.domains.addresses.service import Caller
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.errors import Invalid

router = APIRouter(prefix="/v1/address-pools", tags=["addresses"], dependencies=CLEAN_URL)


def _caller(principal: Principal) -> Caller:
    return Caller(project_id=access.row_scope(principal))


def _out(session: Session, pool: AddressPool, caller: Caller) -> PoolOut:
    allocated = session.scalar(select(func.count()).select_from(AddressAllocation).where(
        pools.visible_allocations(caller, pool))) or 0
    return PoolOut(id=pool.id, name=pool.name, description=pool.description, project_id=pool.project_id,
                   cidr=pool.cidr, ip_version=pool.ip_version, allocated=int(allocated), created_at=pool.created_at)


def _allocation(row: AddressAllocation, site_name: str | None) -> AllocationOut:
    return AllocationOut(id=row.id, pool_id=row.pool_id, site_id=row.site_id, site=site_name,
                         project_id=row.project_id, cidr=row.cidr, created_at=row.created_at)


@router.post("", response_model=PoolOut, status_code=status.HTTP_201_CREATED)
def create_pool(body: PoolIn, runtime: RuntimeDep, principal: PrincipalDep) -> PoolOut:
    """A pool of the caller's project (fleet admins: any project's, or shared)."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        pool = pools.create_pool(session, name=body.name, description=body.description, cidr=body.cidr,
                                 project=body.project, shared=body.shared, caller=caller, now=utcnow())
        return _out(session, pool, caller)


@router.get("", response_model=PoolList)
def list_pools(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> PoolList:
    """The caller's project's pools and the shared ones (fleet admins: all), by name."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        found = pools.list_pools(session, caller=caller, limit=limit + 1, offset=offset)
        return PoolList(items=[_out(session, p, caller) for p in found[:limit]],
                        next_offset=offset + limit if len(found) > limit else None)


@router.get("/{ref}", response_model=PoolOut)
def get_pool(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> PoolOut:
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        return _out(session, pools.get_pool(session, ref=ref, caller=caller), caller)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pool(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Remove an empty pool (409 while it has allocations)."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        pools.delete_pool(session, pool=pools.get_pool(session, ref=ref, caller=caller), caller=caller)


@router.post("/{ref}/allocations", response_model=AllocationOut, status_code=status.HTTP_201_CREATED)
def allocate(ref: str, body: AllocationIn, runtime: RuntimeDep, principal: PrincipalDep) -> AllocationOut:
    """Hand a site the first free prefix of ``prefix_length``; 409 when the pool has none left."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:  # look-ups first, in their own transaction
        pool_id = pools.get_pool(session, ref=ref, caller=caller).id
        if body.site is None or body.prefix_length is None:
            raise Invalid("site and prefix_length are required, e.g. {\"site\": \"paris\", \"prefix_length\": 24}")
        site = sites.get_site(session, body.site)
        site_id, site_name = site.id, site.name
    with transaction(runtime.factory) as session:  # the pool's lock is this transaction's first write
        row = pools.allocate(session, pool_id=pool_id, site_id=site_id, prefix_length=body.prefix_length,
                             caller=caller, now=utcnow())
        return _allocation(row, site_name)


@router.get("/{ref}/allocations", response_model=AllocationList)
def list_allocations(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> AllocationList:
    """Prefixes handed out, in address order (a tenant in a shared pool: its own)."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        pool = pools.get_pool(session, ref=ref, caller=caller)
        rows = pools.list_allocations(session, pool=pool, caller=caller, limit=limit + 1, offset=offset)
        names = dict(session.execute(select(Site.id, Site.name).where(Site.id.in_({r.site_id for r in rows}))).all())
        return AllocationList(items=[_allocation(r, names.get(r.site_id)) for r in rows[:limit]],
                              next_offset=offset + limit if len(rows) > limit else None)


@router.delete("/{ref}/allocations/{allocation_id}", status_code=status.HTTP_204_NO_CONTENT)
def release(ref: str, allocation_id: Annotated[int, Path(ge=1, le=2**63 - 1)], runtime: RuntimeDep,
            principal: PrincipalDep) -> None:
    """Give a prefix back to the pool."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        pools.release(session, pool=pools.get_pool(session, ref=ref, caller=caller), allocation_id=allocation_id,
                      caller=caller)
