"""/v1/networks: a tenant network declared once (an address pool, a prefix length, a placement and
options) and made in every placed site: a network, a subnet of the site's own prefix from the pool,
and a router (optionally with an external gateway), in the owning project mapped onto each site.

Why it exists: numbering the same tenant network by hand on many sites is where overlaps come from.
The prefixes are taken from the pool at declaration, all at once (an exhausted pool refuses the whole
request, 409, and takes none); then the network is a desired resource like a security group: converged
by the engine, repaired by the drift audit, shown with one binding per site (the list and show views
are the sync routes' own). Delete removes what Skyfleet made and gives the prefixes back. A tenant
declares in its own project; a fleet admin may name the project. Instead of a pool, ``cidrs`` names
each site's CIDR outright (checked: network addresses, one IP version, no overlap, one per placed
site, and against the managed address space: pool allocations, the routable subnets of the address
view; one inside a pool is reserved there, ``domains.networks.address_space``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, model_validator

from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of, list_view, remove_resource, show_view
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.networks import address_space, vpn
from skyfleet.domains.networks import service as networks
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.schemas import Placement, ResourceCreate, ResourceList, ResourceOut, ResourceUpdate
from skyfleet.domains.text import Name
from skyfleet.errors import Conflict, Forbidden
from skyfleet.reconcile.kinds import validate_payload

router = APIRouter(prefix="/v1/networks", tags=["networks"], dependencies=CLEAN_URL)
KIND = networks.KIND
SPEC = ("name", "pool", "prefix_length", "second_subnet", "enable_dhcp", "gateway", "dns_nameservers", "router",
        "security_group")


class RouterIn(BaseModel):
    """A router with an interface on the subnet; its gateway on an external network (id or name in each
    site), or none."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    external_network: Name | None = Field(None, min_length=1, max_length=255)


class SecurityGroupIn(BaseModel):
    """``allow_internal``: a security group ``<name>-internal`` on each site that lets in any traffic
    from the network's own prefixes (every site's); false removes it."""

    model_config = ConfigDict(extra="forbid")

    allow_internal: bool = True


class SecondSubnetIn(BaseModel):
    """A second subnet of the other IP version (dual stack): each site gets a prefix of this pool too."""

    model_config = ConfigDict(extra="forbid")

    pool: Name = Field(min_length=1, max_length=255, description="address pool (id or name) of the other IP version")
    prefix_length: int = Field(64, ge=1, le=128, description="length of each site's prefix of it")


class ProjectIn(BaseModel):
    """The project a fleet admin declares the network for (a project of the home Keystone)."""

    model_config = ConfigDict(extra="forbid")

    id: Name = Field(min_length=1, max_length=64)
    name: Name | None = Field(None, max_length=255, description="its name: how sites that share nothing find it")
    domain_name: Name | None = Field(None, max_length=255)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enable_dhcp: bool | None = None
    gateway: bool | None = Field(None, description="the subnet's first address is its gateway (false: none)")
    dns_nameservers: list[IPvAnyAddress] | None = Field(None, max_length=5)
    router: RouterIn | None = None
    security_group: SecurityGroupIn | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Options:
        servers = [str(a) for a in self.dns_nameservers or []]
        if len(set(servers)) != len(servers):
            raise ValueError("dns_nameservers: each address at most once")
        return self


Cidrs = dict[Annotated[str, Field(min_length=1, max_length=255)], Annotated[str, Field(min_length=1, max_length=64)]]


class NetworkCreate(Options):
    name: Name = Field(min_length=1, max_length=255)
    pool: Name | None = Field(None, min_length=1, max_length=255,
                              description="address pool (id or name) the prefixes come from (or cidrs)")
    prefix_length: int | None = Field(None, ge=1, le=128, description="length of each site's prefix (default 24)")
    cidrs: Cidrs | None = Field(None, max_length=1000,
                                description="instead of a pool: site (name or id) -> that site's CIDR")
    second_subnet: SecondSubnetIn | None = Field(None, description="dual stack: a subnet of the other IP version")
    placement: Placement = Field(default_factory=Placement)
    project: ProjectIn | None = Field(None, description="fleet admins: the owning project (default: the caller's)")
    allow_overlap: bool = Field(False, description="with cidrs: a deliberate reuse of a range the project's "
                                "networks or its routing domains already use (never a pool's allocation)")

    @model_validator(mode="after")
    def _one_source(self) -> NetworkCreate:
        if (self.pool is None) == (self.cidrs is None):
            raise ValueError("give exactly one of pool (each site's prefix taken from an address pool) and cidrs "
                             "(each site's CIDR given outright)")
        if self.allow_overlap and self.cidrs is None:
            raise ValueError("allow_overlap goes with cidrs; a pool never hands out a prefix in use")
        if self.cidrs is not None:
            if not self.cidrs:
                raise ValueError("cidrs: at least one site's CIDR")
            if self.prefix_length is not None:
                raise ValueError("prefix_length goes with pool; with cidrs each CIDR carries its own length")
            if self.second_subnet is not None:
                raise ValueError("second_subnet goes with pool; a network declared with cidrs has one subnet per site")
        return self


class NetworkUpdate(Options):
    placement: Placement | None = None
    cidrs: Cidrs | None = Field(None, max_length=1000,
                                description="a network declared with cidrs: the CIDRs of sites that join it")
    allow_overlap: bool | None = Field(None, description="a network declared with cidrs: allow (or no longer) a "
                                       "deliberate reuse of a range in use, for the CIDRs added from now on")


def _spec(fields: dict[str, Any]) -> dict[str, Any]:
    """The spec as the kind validates it (a router needs the subnet's gateway: 422 otherwise)."""
    router_on = (fields.get("router") or {}).get("enabled", True)
    if router_on and fields.get("gateway") is False:
        raise _unprocessable("router: a router needs the subnet's gateway; set gateway true or router.enabled false")
    spec = {k: v for k, v in fields.items() if k in SPEC and v is not None}
    spec["dns_nameservers"] = [str(ipaddress.ip_address(str(a))) for a in spec.get("dns_nameservers") or []]
    normalised = validate_payload(service.TASK_KIND[KIND], spec)
    return {k: normalised[k] for k in SPEC}


def _unprocessable(detail: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": detail, "type": "value_error"}])


def _caller(principal: Principal, project: ProjectIn | None, home_domain: str | None) -> service.Caller:
    caller = caller_of(principal, home_domain)
    if project is None or project.id == principal.project_id:
        return caller
    if not principal.is_admin:
        raise Forbidden("a tenant declares networks in its own project; naming another project is for fleet admins")
    return service.Caller(user_id=caller.user_id, user_name=caller.user_name, project_id=project.id,
                          project_name=project.name, is_admin=True, real_user=caller.real_user,
                          user_domain_name=caller.user_domain_name,
                          project_domain_name=project.domain_name or home_domain)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def create(body: NetworkCreate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    """Declare a network: every placed site gets a prefix now (409 when the pool has too few left)."""
    caller = _caller(principal, body.project, runtime.settings.home_domain_name)
    if body.cidrs is not None:
        return _create_with_cidrs(body, body.cidrs, runtime, principal, caller)
    spec = _spec({**body.model_dump(mode="json", exclude={"cidrs"}), "prefix_length": body.prefix_length or 24})
    project = caller.project_id
    assert body.pool is not None  # the model's validator: exactly one of pool and cidrs
    with read_only(runtime.factory) as session:  # look-ups first, in their own transaction
        service.validate_placement(session, body.placement)
        placed = service.placed_sites(session, body.placement.model_dump(exclude_none=True))
        pool = networks.find_pool(session, ref=body.pool, project_id=project, prefix_length=spec["prefix_length"])
        slots: list[networks.Slot] = [(pool.id, spec["prefix_length"], "")]
        pool_ids = {"pool_id": pool.id}
        if body.second_subnet is not None:
            second = networks.find_second_pool(session, first=pool, ref=body.second_subnet.pool, project_id=project,
                                               prefix_length=body.second_subnet.prefix_length)
            slots.append((second.id, body.second_subnet.prefix_length, "2"))
            pool_ids["pool2_id"] = second.id
        session.expunge_all()
    now = utcnow()
    with transaction(runtime.factory) as session:  # the pools' locks are this transaction's first writes
        held = networks.take(session, slots=slots, sites=placed, project_id=project, now=now)
        data = ResourceCreate(spec=spec, placement=body.placement)
        resource = service.create(session, kind=KIND, data=data, spec=spec, caller=caller, now=now)
        resource.options = {**resource.options, **pool_ids, "prefixes": held}
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


def _create_with_cidrs(body: NetworkCreate, cidrs: dict[str, str], runtime: RuntimeDep, principal: PrincipalDep,
                       caller: service.Caller) -> ResourceOut:
    """Declare a network whose sites' CIDRs are given (422 with the reason when they do not fit):
    nothing is taken from a pool, and the kind gets each site's CIDR through the same prefix map."""
    spec = _spec(body.model_dump(mode="json", exclude={"cidrs"}))
    with read_only(runtime.factory) as session:
        service.validate_placement(session, body.placement)
        placed = service.placed_sites(session, body.placement.model_dump(exclude_none=True))
        explicit = networks.explicit_cidrs(session, cidrs, placed=placed)
        held = {site.id: {"site_name": site.name, "cidr": explicit[site.id]} for site in placed}
        session.expunge_all()
    now = utcnow()
    with transaction(runtime.factory) as session:  # the address space lock is this transaction's first write
        reserved = address_space.guard(session, cidrs=explicit, project_id=caller.project_id or None,
                                       admin=principal.is_admin, allow_overlap=body.allow_overlap, resource_id=None,
                                       now=now)
        data = ResourceCreate(spec=spec, placement=body.placement)
        resource = service.create(session, kind=KIND, data=data, spec=spec, caller=caller, now=now)
        resource.options = {**resource.options, "cidrs": explicit, "prefixes": held, "reservations": reserved,
                            "allow_overlap": body.allow_overlap}
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.get("", response_model=ResourceList)
def list_networks(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  marker: str | None = None) -> ResourceList:
    """Declared networks (a tenant: its project's), each site's binding and prefix in ``options.prefixes``."""
    return list_view(runtime, principal, KIND, limit=limit, marker=marker)


@router.get("/{ref}", response_model=ResourceOut)
def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    return show_view(runtime, principal, KIND, ref)


@router.patch("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def patch(ref: str, body: NetworkUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    """Change DHCP, nameservers, gateway, router or placement; a site that joins gets its prefix now
    (409 when the pool has none left, or, for a network declared with cidrs, when no CIDR was given
    for it: ``cidrs`` adds them), a site that leaves gives it back once its copy is deleted."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        changed = {k: v for k, v in body.model_dump(mode="json", exclude={"placement", "cidrs"}).items()
                   if v is not None}
        spec = _spec({**resource.spec, **changed})
        service.update(session, resource=resource, data=ResourceUpdate(placement=body.placement), spec=spec, now=now)
        if body.cidrs:
            if resource.options.get("cidrs") is None:
                raise Conflict(f"network {resource.name!r} takes its prefixes from a pool; cidrs is only for a "
                               "network declared with cidrs")
            placed = service.placed_sites(session, resource.placement)
            had = dict(resource.options["cidrs"])
            added = networks.explicit_cidrs(session, body.cidrs, placed=placed, held=had)
            added = {sid: cidr for sid, cidr in added.items() if sid not in had}  # a site's own CIDR again
            allow = resource.options.get("allow_overlap", False) if body.allow_overlap is None else body.allow_overlap
            reserved = address_space.guard(session, cidrs=added, project_id=resource.scope or None,
                                           admin=principal.is_admin, allow_overlap=allow, resource_id=resource.id,
                                           now=now)
            resource.options = {**resource.options, "cidrs": {**had, **added}, "allow_overlap": allow,
                                "reservations": {**(resource.options.get("reservations") or {}), **reserved}}
        elif body.allow_overlap is not None:
            if resource.options.get("cidrs") is None:
                raise Conflict(f"network {resource.name!r} takes its prefixes from a pool; allow_overlap is only for "
                               "a network declared with cidrs")
            resource.options = {**resource.options, "allow_overlap": body.allow_overlap}
        networks.allocate(session, resource=resource, sites=service.placed_sites(session, resource.placement),
                          now=now, strict=True)
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut,
               responses={204: {"description": "Deleted at once: it was on no site."}})
def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
           purge: Annotated[bool, Query(description="delete the ports that still use the network first")] = False,
           ) -> ResourceOut | Response:
    """Delete what Skyfleet made in every site; each site's prefix goes back to the pool once it is gone.
    409 with the sites and port counts when servers' ports still use it (the store's view), unless
    ``purge``; each site's task checks again live and fails that site with the reason."""
    with read_only(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal))
        vpn.refuse_if_meshed(session, resource)
        if not purge:
            networks.refuse_if_in_use(session, resource)
    return remove_resource(runtime, principal, KIND, ref, purge)
