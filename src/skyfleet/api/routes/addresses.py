"""/v1/addresses and /v1/routing-domains: one address space across sites, from Skyfleet's store.

Tenants see the addresses, subnets and conflicts of their own project only, and manage their own
project's routing domains; fleet admins see and manage all. Every answer comes from the derived
address tables that the inventory refresh keeps (never a fan-out to sites). A change of routing
domain recomputes the conflicts in the same request, so the answer already reflects it.
"""

from __future__ import annotations

import csv as csvlib
import dataclasses
import io
import threading
from datetime import datetime
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import conflicts as conflict_rules
from skyfleet.domains.addresses import netmath, queries
from skyfleet.domains.addresses import service as domains
from skyfleet.domains.addresses.models import RoutingDomain
from skyfleet.domains.addresses.schemas import (
    AddressList,
    AddressOut,
    AddressSummary,
    ConflictList,
    ConflictOut,
    Count,
    MemberOut,
    RoutingDomainIn,
    RoutingDomainList,
    RoutingDomainOut,
    RoutingDomainPatch,
    SiteUsage,
    SubnetUsage,
)
from skyfleet.domains.inventory import queries as inventory_queries
from skyfleet.domains.networks import vpn
from skyfleet.domains.sites import service as sites
from skyfleet.errors import Conflict, Forbidden, Invalid

router = APIRouter(prefix="/v1/addresses", tags=["addresses"], dependencies=CLEAN_URL)
domain_router = APIRouter(prefix="/v1/routing-domains", tags=["addresses"], dependencies=CLEAN_URL)
routers = [router, domain_router]
STALE_FACTOR = 3  # addresses come from the full refresh: stale after this many full intervals
JSON_PAGE, CSV_PAGE = 1000, 100_000
SUMMARY_TTL = 3.0
_summary_cache: TTLCache[tuple[str, str | None, str | None], AddressSummary] = TTLCache(maxsize=1024,
                                                                                       ttl=SUMMARY_TTL)
_summary_lock = threading.Lock()
CSV_COLUMNS = ("site", "project_id", "kind", "ip", "ip_version", "mac", "network_id", "subnet_id", "subnet_cidr",
               "port_id", "device_id", "device_name", "device_owner", "observed_at", "stale")


def _scope(principal: Principal, project: str | None) -> str | None:
    if access.allows(principal, "inventory.any_project"):
        return project
    if project is not None and project != principal.project_id:
        raise Forbidden(f"project {project!r} is not the project of your token; tenants see their own project only")
    return access.row_scope(principal)


def _age(observed: datetime | None, now: datetime) -> float | None:
    return round((now - observed).total_seconds(), 1) if observed else None


@router.get("", response_model=AddressList, responses={200: {"content": {"text/csv": {}}}})
def list_addresses(
    runtime: RuntimeDep, principal: PrincipalDep,
    ip: Annotated[str | None, Query(max_length=64, description="Exact address, v4 or v6")] = None,
    cidr: Annotated[str | None, Query(max_length=64, description="Addresses inside this CIDR, e.g. 10.0.0.0/8")]
    = None,
    mac: Annotated[str | None, Query(max_length=40, description="MAC address (any case)")] = None,
    device: Annotated[str | None, Query(max_length=255, description="Device (server) id or name")] = None,
    site: Annotated[str | None, Query(description="Site id or name")] = None,
    kind: Annotated[str | None, Query(description="Comma-separated: fixed, floating, gateway")] = None,
    version: Annotated[int | None, Query(description="4 or 6")] = None,
    project: Annotated[str | None, Query(max_length=64, description="Project id (admins)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=CSV_PAGE, description="At most 1000 (JSON) or 100000 (CSV)")]
    = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    format: Annotated[str, Query(description="json (default) or csv")] = "json",
) -> Any:
    """Every fixed, floating and router gateway address of the caller's project (admins: all), v4 and v6."""
    if format not in ("json", "csv"):
        raise Invalid(f"format: {format[:20]!r} is not json or csv")
    page = limit or (CSV_PAGE if format == "csv" else 100)
    if format == "json" and page > JSON_PAGE:
        raise Invalid(f"limit: at most {JSON_PAGE} with format=json (use format=csv for an export)")
    kinds = csv(kind, "kind")
    unknown = sorted(set(kinds) - set(queries.KINDS))
    if unknown:
        raise Invalid(f"kind: {unknown[0]!r} is not one of {list(queries.KINDS)}")
    if version not in (None, 4, 6):
        raise Invalid(f"version: {version} is not 4 or 6")
    filters = queries.AddressFilter(
        project_id=_scope(principal, project), ip=netmath.parse_address(ip) if ip else None,
        cidr=netmath.parse_cidr(cidr) if cidr else None, mac=netmath.normalise_mac(mac) if mac else None,
        device=device or None, kinds=kinds, version=version)
    now, stale_after = utcnow(), runtime.settings.inventory_full_interval * STALE_FACTOR
    with transaction(runtime.factory) as session:
        if site is not None:
            filters = dataclasses.replace(filters, site_id=sites.get_site(session, site).id)
        rows, next_offset = queries.list_addresses(session, filters=filters, limit=page, offset=offset)
        items = []
        for row in rows:
            a, age = row.item, _age(row.observed_at, now)
            items.append(AddressOut(
                site_id=a.site_id, site=row.site_name, project_id=a.project_id, kind=a.kind, ip=a.ip,
                ip_version=a.ip_version, mac=a.mac, network_id=a.network_id, subnet_id=a.subnet_id,
                subnet_cidr=a.subnet_cidr, port_id=a.port_id, device_id=a.device_id, device_owner=a.device_owner,
                device_name=a.device_name, observed_at=row.observed_at, age_seconds=age,
                stale=row.availability == "offline" or age is None or age > stale_after))
    if format == "csv":
        return _csv(items, next_offset)
    return AddressList(items=items, next_offset=next_offset)


def _csv(items: list[AddressOut], next_offset: int | None) -> Response:
    buffer = io.StringIO()
    writer = csvlib.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        values = item.model_dump(mode="json")
        writer.writerow([_cell(values.get(column)) for column in CSV_COLUMNS])
    headers = {"Content-Disposition": 'attachment; filename="addresses.csv"'}
    if next_offset is not None:
        headers["X-Next-Offset"] = str(next_offset)
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (names come from sites' users)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/summary", response_model=AddressSummary)
def summary(runtime: RuntimeDep, principal: PrincipalDep,
            site: Annotated[str | None, Query(description="Site id or name")] = None,
            project: Annotated[str | None, Query(max_length=64, description="Project id (admins)")] = None,
            ) -> AddressSummary:
    """Used and free addresses per site and per subnet (a tenant: its project's subnets).

    It aggregates every address in scope (about a second for a fleet-wide view of 200,000), so each
    scope's answer is kept ``SUMMARY_TTL`` seconds: far shorter than the refresh that changes it.
    """
    scope = _scope(principal, project)
    key = (runtime.settings.effective_database_url, scope, site)
    with _summary_lock:
        cached = _summary_cache.get(key)
    if cached is None:
        cached = _summary(runtime, scope, site)
        with _summary_lock:
            _summary_cache[key] = cached
    return cached


def _summary(runtime: RuntimeDep, scope: str | None, site: str | None) -> AddressSummary:
    with transaction(runtime.factory) as session:
        site_id = sites.get_site(session, site).id if site is not None else None
        uses = queries.utilisation(session, project_id=scope, site_id=site_id)
        fresh = queries.site_freshness(session)
    subnets = [SubnetUsage(site_id=u.site_id, site=fresh[u.site_id][0], subnet_id=u.subnet.subnet_id,
                           name=u.subnet.name, network_id=u.subnet.network_id, project_id=u.subnet.project_id,
                           cidr=u.subnet.cidr, ip_version=u.subnet.ip_version, gateway_ip=u.subnet.gateway_ip,
                           used=u.used, free=netmath.json_count(u.free))
               for u in sorted(uses, key=lambda u: (fresh[u.site_id][0], u.subnet.ip_version, u.subnet.first_key))]
    per_site = []
    for site_id_, versions in sorted(queries.group_by_site(uses).items(), key=lambda kv: fresh[kv[0]][0]):
        name, availability, observed = fresh[site_id_]
        counts = {f"v{v}": Count(used=used, free=netmath.json_count(free)) for v, (used, free) in versions.items()}
        per_site.append(SiteUsage(site_id=site_id_, site=name, availability=availability, observed_at=observed,
                                  **counts))
    return AddressSummary(sites=per_site, subnets=subnets)


@router.get("/conflicts", response_model=ConflictList)
def list_conflicts(runtime: RuntimeDep, principal: PrincipalDep,
                   kind: Annotated[str | None, Query(description="Comma-separated: " + ", ".join(
                       conflict_rules.KINDS))] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> ConflictList:
    """Overlapping subnets and duplicate IPs/MACs in routing domains, duplicate public IPs anywhere."""
    kinds = csv(kind, "kind")
    unknown = sorted(set(kinds) - set(conflict_rules.KINDS))
    if unknown:
        raise Invalid(f"kind: {unknown[0]!r} is not one of {list(conflict_rules.KINDS)}")
    scope = access.row_scope(principal)
    with transaction(runtime.factory) as session:
        rows, next_offset = queries.list_conflicts(session, project_id=scope, kinds=kinds, limit=limit,
                                                   offset=offset)
        pairs = inventory_queries.project_pairs(session, scope) if scope is not None else set()
        items = []
        for row in rows:
            members = list(row.details.get("members", []))
            hidden = 0
            if scope is not None and row.kind == conflict_rules.DUP_PUBLIC:
                shown = [m for m in members if queries.belongs(m, scope, pairs)]
                hidden, members = int(row.details.get("count", len(members))) - len(shown), shown
            items.append(ConflictOut(key=row.key, kind=row.kind, domain_id=row.domain_id, project_id=row.project_id,
                                     summary=row.summary, members=members,
                                     count=int(row.details.get("count", len(members))), hidden=hidden,
                                     first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at))
    return ConflictList(items=items, next_offset=next_offset)


# --- routing domains ------------------------------------------------------------------------------

def _caller(principal: Principal) -> domains.Caller:
    return domains.Caller(project_id=access.row_scope(principal))


def _outs(session: Session, found: list[RoutingDomain]) -> list[RoutingDomainOut]:
    ids = [d.id for d in found]
    members = domains.members_of(session, ids)
    networks, conflicts = domains.counts(session, ids)
    return [RoutingDomainOut(
        id=d.id, name=d.name, description=d.description, project_id=d.project_id,
        members=[MemberOut(project=m.project_id) if m.project_id else
                 MemberOut(site_id=m.site_id, site=site_name, network=m.network_id) for m, site_name in members[d.id]],
        networks=networks.get(d.id, 0), conflicts=conflicts.get(d.id, 0), created_at=d.created_at,
        updated_at=d.updated_at) for d in found]


@domain_router.post("", response_model=RoutingDomainOut, status_code=status.HTTP_201_CREATED)
def create_domain(body: RoutingDomainIn, runtime: RuntimeDep, principal: PrincipalDep) -> RoutingDomainOut:
    """Declare networks that route to one another; conflicts in it are computed at once."""
    with transaction(runtime.factory) as session:
        domain = domains.create(session, name=body.name, description=body.description, project=body.project,
                                members=body.members, caller=_caller(principal), now=utcnow())
        session.flush()
        conflict_rules.detect(session, now=utcnow())
        return _outs(session, [domain])[0]


@domain_router.get("", response_model=RoutingDomainList)
def list_domains(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> RoutingDomainList:
    """The caller's project's routing domains (admins: all), by name."""
    with transaction(runtime.factory) as session:
        found = domains.list_domains(session, caller=_caller(principal), limit=limit + 1, offset=offset)
        return RoutingDomainList(items=_outs(session, found[:limit]),
                                 next_offset=offset + limit if len(found) > limit else None)


@domain_router.get("/{ref}", response_model=RoutingDomainOut)
def get_domain(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> RoutingDomainOut:
    with transaction(runtime.factory) as session:
        return _outs(session, [domains.get(session, ref=ref, caller=_caller(principal))])[0]


@domain_router.patch("/{ref}", response_model=RoutingDomainOut)
def update_domain(ref: str, body: RoutingDomainPatch, runtime: RuntimeDep,
                  principal: PrincipalDep) -> RoutingDomainOut:
    """Rename, describe, or replace the members (then conflicts are computed again)."""
    caller = _caller(principal)
    with transaction(runtime.factory) as session:
        domain = domains.get(session, ref=ref, caller=caller)
        domains.update(session, domain=domain, name=body.name, description=body.description, members=body.members,
                       caller=caller, now=utcnow())
        session.flush()
        conflict_rules.detect(session, now=utcnow())
        return _outs(session, [domain])[0]


@domain_router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_domain(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Forget the domain; its conflicts are cleared (with their events) at once."""
    with transaction(runtime.factory) as session:
        domain = domains.get(session, ref=ref, caller=_caller(principal))
        if vpn.mesh_of(session, domain) is not None:
            raise Conflict(f"routing domain {domain.name!r} is meshed; delete its mesh first "
                           "(DELETE /v1/routing-domains/{ref}/vpn)")
        domains.remove(session, domain=domain)
        session.flush()
        conflict_rules.detect(session, now=utcnow())
