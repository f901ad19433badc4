"""What is particular to declared networks, on top of the desired-resource machinery of ``domains.sync``.

Why it exists: a declared network is a desired resource like a security group (one row, one binding
per site, the same converge and drift audit), but each site's copy needs its own prefix, taken from an
address pool (``domains.addresses.pools``: non-overlapping, serialized per pool). This module keeps
the resource's prefixes in ``options["prefixes"]`` (site id -> cidr and allocation id), takes one for
every placed site that has none (at declaration, for every site at once, so an exhausted pool refuses
the whole request; later, at converge, for a site that joined the placement), hands each site's task
its own prefix, and releases a site's prefix once its copy is gone (the site left the placement, or
the network was deleted).

A network may instead be declared with an explicit CIDR per site (``cidrs``, kept by site id in
``options["cidrs"]``): those go into the same ``options["prefixes"]`` map, without an allocation id,
so the kind and the release path are the same. Such CIDRs are checked against the managed address
space first (``address_space``): one inside a pool is reserved there (``options["reservations"]``),
given back when the network is deleted.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, distinct, func, or_, select
from sqlalchemy.orm import Session

from skyfleet.db.engine import is_read_only
from skyfleet.domains.addresses import pools
from skyfleet.domains.addresses.models import AddressAllocation, AddressItem, AddressPool
from skyfleet.domains.addresses.service import Caller as PoolCaller
from skyfleet.domains.networks import address_space
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource
from skyfleet.errors import Conflict, Invalid, NotFound, Unprocessable

KIND = "network"


def pool_caller(project_id: str | None) -> PoolCaller:
    """The project a network's prefixes are taken for (None: a fleet admin's network of no project)."""
    return PoolCaller(project_id=project_id or None)


def find_pool(session: Session, *, ref: str, project_id: str | None, prefix_length: int) -> AddressPool:
    """The pool ``ref`` as the owning project sees it (its own or a shared one); 404 with the reason
    when there is none, 400 when ``prefix_length`` does not fit in it."""
    try:
        pool = pools.get_pool(session, ref=ref, caller=pool_caller(project_id))
    except NotFound:
        raise NotFound(f"pool: no address pool {ref!r} of the network's project or shared") from None
    network = ipaddress.ip_network(pool.cidr)
    if not network.prefixlen <= prefix_length <= network.max_prefixlen:
        raise Invalid(f"prefix_length: {prefix_length} is outside {network.prefixlen}..{network.max_prefixlen} "
                      f"for the pool {pool.name!r} ({pool.cidr})")
    return pool


def find_second_pool(session: Session, *, first: AddressPool, ref: str, project_id: str | None,
                     prefix_length: int) -> AddressPool:
    """The pool of a dual-stack network's second subnet: like :func:`find_pool`, and of the other IP
    version than the first pool (400 otherwise)."""
    try:
        pool = pools.get_pool(session, ref=ref, caller=pool_caller(project_id))
    except NotFound:
        raise NotFound(f"second_subnet.pool: no address pool {ref!r} of the network's project or shared") from None
    version = ipaddress.ip_network(first.cidr).version
    if ipaddress.ip_network(pool.cidr).version == version:
        raise Invalid(f"second_subnet.pool: {pool.name!r} ({pool.cidr}) is IPv{version} like the pool "
                      f"{first.name!r} ({first.cidr}); the second subnet is of the other IP version")
    try:
        return find_pool(session, ref=pool.id, project_id=project_id, prefix_length=prefix_length)
    except Invalid as exc:
        raise Invalid(f"second_subnet.{exc.detail}") from None


def explicit_cidrs(session: Session, cidrs: dict[str, str], *, placed: Sequence[Site],
                   held: dict[str, str] | None = None) -> dict[str, str]:
    """Site id -> CIDR of a network declared with ``cidrs`` (keys: site names or ids). 422 with the
    reason: an unknown site, a CIDR that is not a network address (host bits set, a bad spelling, too
    long a prefix to hold addresses), two IP versions, two CIDRs that overlap (naming the pair), a
    placed site without one. ``held``: the CIDRs the network already has (a PATCH): a site's CIDR
    cannot change, and new ones must not overlap them."""
    held = dict(held or {})
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for ref, text in cidrs.items():
        try:
            site = sites.get_site(session, ref)
        except NotFound:
            raise Unprocessable(f"cidrs: no site {ref!r}") from None
        if site.id in out:
            raise Unprocessable(f"cidrs: site {site.name!r} is named twice")
        try:
            network = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as exc:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f"; did you mean {ipaddress.ip_network(text.strip(), strict=False)}?"
            raise Unprocessable(f"cidrs.{site.name}: {text!r} is not a valid CIDR ({exc}){hint}") from None
        if network.prefixlen > network.max_prefixlen - 2:
            raise Unprocessable(f"cidrs.{site.name}: {network} is too small for a subnet (at most "
                                f"/{network.max_prefixlen - 2} for IPv{network.version})")
        if site.id in held and held[site.id] != str(network):
            raise Unprocessable(f"cidrs.{site.name}: the site already has {held[site.id]}; a site's CIDR "
                                "cannot change (declare the network again)")
        out[site.id], names[site.id] = str(network), site.name
    for site in placed:
        names.setdefault(site.id, site.name)
    every = {**held, **out}
    unnamed = [sid for sid in held if sid not in names]
    if unnamed:
        names.update(session.execute(select(Site.id, Site.name).where(Site.id.in_(unnamed))).tuples().all())
    names.update({sid: sid for sid in unnamed if sid not in names})  # a site deregistered since
    versions = {ipaddress.ip_network(c).version for c in every.values()}
    if len(versions) > 1:
        raise Unprocessable("cidrs: all of a network's CIDRs are of one IP version (a second subnet of the other "
                            "version is a pool-declared network's second_subnet)")
    ordered = sorted(every.items(), key=lambda kv: names[kv[0]])
    for i, (a, cidr_a) in enumerate(ordered):
        for b, cidr_b in ordered[i + 1:]:
            if ipaddress.ip_network(cidr_a).overlaps(ipaddress.ip_network(cidr_b)):
                raise Unprocessable(f"cidrs: {names[a]} ({cidr_a}) and {names[b]} ({cidr_b}) overlap; each site's "
                                    "CIDR must be its own")
    missing = sorted(s.name for s in placed if s.id not in every)
    if missing:
        raise Unprocessable(f"cidrs: no CIDR for the placed site{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)}; every placed site needs one")
    return out


def prefixes(resource: SyncResource) -> dict[str, dict[str, Any]]:
    return dict(resource.options.get("prefixes") or {})


Slot = tuple[str, int, str]  # pool id, prefix length, key suffix ("": the first subnet, "2": the second)


def slots(resource: SyncResource) -> list[Slot]:
    """The pools a network takes a prefix of on each site: its pool, and its second subnet's (the
    other IP version) when it asked for one."""
    out = [(str(resource.options["pool_id"]), int(resource.spec["prefix_length"]), "")]
    second = resource.spec.get("second_subnet")
    if second and resource.options.get("pool2_id"):
        out.append((str(resource.options["pool2_id"]), int(second["prefix_length"]), "2"))
    return out


def _take_site(session: Session, *, slots: Sequence[Slot], site: Site, project_id: str | None,
               now: datetime) -> dict[str, Any]:
    """One prefix of each pool for ``site``, or none at all (what was taken is given back on a refusal).
    Pools are taken in id order, so two requests never wait on each other's pool locks crosswise."""
    held: dict[str, Any] = {"site_name": site.name}
    taken: list[AddressAllocation] = []
    try:
        for pool_id, prefix_length, suffix in sorted(slots):
            row = pools.allocate(session, pool_id=pool_id, site_id=site.id, prefix_length=prefix_length,
                                 caller=pool_caller(project_id), now=now)
            taken.append(row)
            held.update({f"cidr{suffix}": row.cidr, f"allocation_id{suffix}": row.id})
    except (Conflict, NotFound, Invalid):
        for row in taken:
            session.delete(row)
        raise
    return held


def take(session: Session, *, slots: Sequence[Slot], sites: Sequence[Site], project_id: str | None,
         now: datetime) -> dict[str, dict[str, Any]]:
    """A prefix of each pool for each of ``sites`` (site id -> cidr, allocation id, site name, and
    cidr2, allocation_id2 for a second subnet); 409 when a pool runs out, and then the request takes
    none (its transaction is rolled back). Call it before any other write of the transaction (the
    pool's lock, ``domains.addresses.pools``)."""
    return {site.id: _take_site(session, slots=slots, site=site, project_id=project_id, now=now) for site in sites}


def allocate(session: Session, *, resource: SyncResource, sites: Sequence[Site], now: datetime,
             strict: bool) -> dict[str, str]:
    """Take a prefix for every site of ``sites`` that has none. ``strict`` (a request): a refusal of the
    pool (exhausted: 409) is raised; otherwise (converge, the audit) the site is left without one and
    the reason returned by site id (its task is not submitted)."""
    held, refused = prefixes(resource), {}
    explicit = resource.options.get("cidrs")
    for site in sites:
        if site.id in held:
            continue
        if explicit is not None:  # declared with cidrs: nothing comes from a pool
            if site.id in explicit:
                held[site.id] = {"site_name": site.name, "cidr": explicit[site.id]}
            elif strict:
                raise Conflict(f"site {site.name} has no CIDR: the network {resource.name!r} was declared with "
                               f"cidrs; give it one in the same request (cidrs: {{{site.name!r}: ...}})")
            continue  # its task fails its binding with the reason (no CIDR was given for the site)
        try:
            held[site.id] = _take_site(session, slots=slots(resource), site=site, project_id=resource.scope, now=now)
        except (Conflict, NotFound, Invalid) as exc:
            if strict:
                raise
            refused[site.id] = f"{site.name}: {exc.detail}"
    unallocated = sorted(refused.values())
    if held != prefixes(resource) or unallocated != resource.options.get("unallocated", []):
        resource.options = {**resource.options, "prefixes": held, "unallocated": unallocated}
    return refused


def note_result(resource: SyncResource, site_id: str, result: dict[str, Any]) -> None:
    """Keep each site's router gateway address as its last successful task reported it
    (``options.gateways``): a VPN mesh's peers connect there, and it must not vanish while a newer
    task of the site is still pending."""
    if resource.kind != KIND or "gateway_ip" not in result:
        return
    gateways = dict(resource.options.get("gateways") or {})
    if gateways.get(site_id) != result["gateway_ip"]:
        gateways[site_id] = result["gateway_ip"]
        resource.options = {**resource.options, "gateways": gateways}


def site_fields(resource: SyncResource) -> dict[str, dict[str, Any]]:
    """The per-site part of each site's task payload: its prefix."""
    if resource.kind != KIND:
        return {}
    held_by_site = prefixes(resource)
    keys: tuple[str, ...] = ("cidr", "cidr2")
    out: dict[str, dict[str, Any]] = {sid: {k: held[k] for k in keys if k in held}
                                      for sid, held in held_by_site.items()}
    if (resource.spec.get("security_group") or {}).get("allow_internal"):  # every site's prefixes, on each
        internal = sorted({held[k] for held in held_by_site.values() for k in keys if k in held})
        for fields in out.values():
            fields["internal_cidrs"] = internal
    return out


def after_fold(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding],
               placed: set[str] | None) -> None:
    """Release the prefixes of sites that hold no copy any more and are not to hold one: every site once
    the network is being deleted, else the sites outside the placement (``placed``)."""
    if resource.kind != KIND:
        return
    if is_read_only(session):
        return  # a view shows the prefixes still held; the writer that folds next releases them
    if resource.state == DELETING and not bindings:
        release_reservations(session, resource)
    held = prefixes(resource)
    gone = [sid for sid in held if sid not in bindings and (resource.state == DELETING or sid not in (placed or set()))]
    if not gone:
        return
    ids = [int(held[sid][key]) for sid in gone for key in ("allocation_id", "allocation_id2") if key in held[sid]]
    session.execute(delete(AddressAllocation).where(AddressAllocation.id.in_(ids))
                    .execution_options(synchronize_session=False))
    resource.options = {**resource.options, "prefixes": {k: v for k, v in held.items() if k not in gone}}


def release_reservations(session: Session, resource: SyncResource) -> None:
    """Give back the pool allocations that reserved the network's explicit CIDRs (it is going away)."""
    ids = address_space.reservation_ids(resource)
    if ids:
        session.execute(delete(AddressAllocation).where(AddressAllocation.id.in_(ids))
                        .execution_options(synchronize_session=False))
        resource.options = {**resource.options, "reservations": {}}


# Ports Neutron or Skyfleet's own router put on a declared network: they go with the network. Any
# other port (a server's, a load balancer's, a bare port) is someone's use of it.
INFRA_OWNERS = frozenset({"network:dhcp", "network:router_interface", "network:router_interface_distributed",
                          "network:ha_router_replicated_interface", "network:router_centralized_snat"})


def is_infra_port(device_owner: str | None) -> bool:
    return (device_owner or "") in INFRA_OWNERS


def ports_in_use(session: Session, resource: SyncResource) -> dict[str, int]:
    """Site name -> how many ports that are not DHCP or router ports use each site's copy of the
    network, as of the last inventory refresh (the address view: one row per fixed IP of a port)."""
    bindings = session.scalars(select(SyncBinding).where(SyncBinding.resource_id == resource.id,
                                                         SyncBinding.remote_id.is_not(None))).all()
    used: dict[str, int] = {}
    for binding in bindings:
        count = session.scalar(
            select(func.count(distinct(AddressItem.port_id)))
            .where(AddressItem.site_id == binding.site_id, AddressItem.network_id == binding.remote_id,
                   AddressItem.kind == "fixed", AddressItem.port_id.is_not(None),
                   or_(AddressItem.device_owner.is_(None), AddressItem.device_owner.not_in(INFRA_OWNERS))))
        if count:
            used[binding.site_name] = int(count)
    return used


def refuse_if_in_use(session: Session, resource: SyncResource) -> None:
    """409 with the reason when servers' ports use the network on some site (``purge`` deletes them)."""
    used = ports_in_use(session, resource)
    if used:
        where = ", ".join(f"{site}: {n} port{'s' if n > 1 else ''}" for site, n in sorted(used.items()))
        raise Conflict(f"network {resource.name!r} is still in use ({where}, not counting its DHCP and router "
                       "ports, as of the last inventory refresh); delete or move those servers first, or delete "
                       "with purge=true to delete the ports with the network")
