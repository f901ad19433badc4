"""A routing domain meshed with site-to-site IPsec (Neutron VPNaaS) over a declared network's sites.

Why it exists: a declared network gives each site its own routed prefix; a routing domain says those
prefixes should reach one another. Where the sites' Neutron has VPNaaS, Skyfleet can build that reach
through public APIs alone: a VPN service on each site's router of the network and a connection between
every pair of sites. The mesh is a desired resource (``vpn_mesh``, one binding per site, converged and
audited by the same engine as the network); this module holds what is particular to it:

- each site's task gets its own part (``site_fields``): its local prefixes, and its peers -- every
  other site of the network with the peer's prefixes and its router's gateway address, as the network's
  own tasks last reported it (``gateway_ip`` in their results). A site whose Neutron has no VPNaaS
  (its binding failed with that reason) is left out of its peers' lists: nobody dials a site that
  cannot answer. A dual-stack network whose routers have an IPv6 gateway too gets a second peer per
  site (``<site>#6``): its IPv6 prefixes at its VPN service's IPv6 address (``address6`` in the mesh
  task's results), with the site's own IPv6 prefixes (``local_cidrs6``);
- the pre-shared key: generated or given once, kept sealed with the SecretBox in the resource's options
  (``psk_box``), opened only by the site task, never in an answer, a log line or an error;
- which sites are meshed (``placed_ids``): the network's sites as they are now, not as they were when
  the mesh was asked, so a site that joins the network later is meshed at the next convergence (the
  periodic converge pass's or any other) and one that leaves has its part removed, and its peers'
  connections to it;
- the key's generation (``psk_version`` in the options, 1 at first, +1 per rotation): each site's task
  reports the generation it set, so the view tells which sites still hold an older key;
- the view a user reads: per site its status, the VPN service's address, each connection's status and
  whether it holds the current key.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.addresses.models import RoutingDomain
from skyfleet.domains.networks.service import prefixes
from skyfleet.domains.operations.models import SUCCEEDED, Task
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource
from skyfleet.errors import Conflict

KIND = "vpn_mesh"
NETWORK_KIND = "network"
#: What a site without VPNaaS answers (the driver's words: ``vpnapi.NOT_AVAILABLE``).
NO_VPNAAS = "no vpnaas extension"


def new_psk() -> str:
    """A pre-shared key for a mesh that was given none: 48 random URL-safe characters."""
    return secrets.token_urlsafe(36)


def check_psk(psk: str) -> str | None:
    """Why ``psk`` cannot be a pre-shared key (never quoting it), or None."""
    if not 16 <= len(psk) <= 128:
        return f"psk: must be 16 to 128 characters (got {len(psk)})"
    if not all(33 <= ord(c) <= 126 for c in psk):
        return "psk: printable ASCII characters only, no spaces"
    return None


def mesh_of(session: Session, domain: RoutingDomain, *, for_update: bool = False) -> SyncResource | None:
    """The mesh of a routing domain (its resource is named by the domain's id), if any."""
    query = select(SyncResource).where(SyncResource.kind == KIND, SyncResource.name == domain.id)
    return session.scalars(query.with_for_update() if for_update else query).first()


def refuse_if_meshed(session: Session, network: SyncResource) -> None:
    """409 when a routing domain's mesh stands on the network (its VPN services are on the routers)."""
    for mesh in session.scalars(select(SyncResource).where(SyncResource.kind == KIND,
                                                          SyncResource.scope == network.scope)):
        if mesh.spec.get("network_id") == network.id:
            domain = session.get(RoutingDomain, mesh.name)
            raise Conflict(f"network {network.name!r} carries the VPN mesh of routing domain "
                           f"{domain.name if domain else mesh.name!r}; delete the mesh first")


def _last_success(session: Session, resource: SyncResource, site_id: str) -> dict[str, Any]:
    """The result of the site's latest successful ``vpn.mesh`` task of this mesh: what the view shows
    while a newer run (the periodic converge pass's, a rotation's) is pending, instead of nothing."""
    rows = session.scalars(select(Task).where(Task.kind == "vpn.mesh", Task.site_id == site_id,
                                              Task.state == SUCCEEDED)
                           .order_by(Task.finished_at.desc()).limit(20))
    for task in rows:
        if (task.payload or {}).get("resource_id") == resource.id and (task.payload or {}).get("action") == "ensure":
            return dict(task.result or {})
    return {}


def _results(session: Session, task_ids: list[str]) -> dict[str, Any]:
    """The stored results of tasks by id."""
    if not task_ids:
        return {}
    return {str(tid): result for tid, result in session.execute(select(Task.id, Task.result)
                                                                .where(Task.id.in_(task_ids))).all()}


def network_sites(session: Session, network: SyncResource) -> dict[str, dict[str, Any]]:
    """Site id -> name, prefixes and router gateway address (as the site's last successful task
    reported it) of each site where the network's copy exists."""
    held, gateways = prefixes(network), dict(network.options.get("gateways") or {})
    out: dict[str, dict[str, Any]] = {}
    for binding in session.scalars(select(SyncBinding).where(SyncBinding.resource_id == network.id)):
        site_id = binding.site_id
        if binding.action != "ensure" or binding.remote_id is None or site_id not in held:
            continue
        cidrs = [held[site_id][k] for k in ("cidr", "cidr2") if held[site_id].get(k)]
        out[site_id] = {"site_name": binding.site_name, "cidrs": cidrs, "address": gateways.get(site_id)}
    return out


def check_ready(session: Session, network: SyncResource) -> list[str]:
    """The network's site ids for a mesh; 409 with the reason when it is on fewer than two sites in
    sync, or a site's router has no gateway address yet (a mesh needs ``router.external_network``)."""
    if network.state == DELETING:
        raise Conflict(f"network {network.name!r} is being deleted")
    if not (network.spec.get("router") or {}).get("enabled", True):
        raise Conflict(f"network {network.name!r} has no router (router.enabled is false): a VPN service "
                       "lives on the router")
    sites = network_sites(session, network)
    if len(sites) < 2:
        raise Conflict(f"network {network.name!r} is made on {len(sites)} site(s); a mesh needs two or more "
                       "(wait for its bindings to be in-sync)")
    bare = sorted(info["site_name"] for info in sites.values() if not info["address"])
    if bare:
        raise Conflict(f"network {network.name!r} has no router gateway address on {', '.join(bare)}: declare it "
                       "with router.external_network (peers connect to the router's gateway address)")
    return sorted(sites)


def placed_ids(session: Session, resource: SyncResource) -> list[str]:
    """The sites the mesh should stand on: those where its network's copy is now (a late joiner
    included, a site the network left not)."""
    network = session.get(SyncResource, str(resource.spec.get("network_id")))
    if network is None or network.state == DELETING:
        return []
    return sorted(network_sites(session, network))


def site_fields(session: Session, resource: SyncResource) -> dict[str, dict[str, Any]]:
    """Each site's part of the mesh: its local prefixes and its peers (address and prefixes)."""
    if resource.kind != KIND:
        return {}
    network = session.get(SyncResource, str(resource.spec.get("network_id")))
    if network is None:
        return {}
    sites = network_sites(session, network)
    bindings = list(session.scalars(select(SyncBinding).where(SyncBinding.resource_id == resource.id)))
    unable = {b.site_id for b in bindings if b.last_error and NO_VPNAAS in b.last_error}
    v6 = _v6_addresses(session, resource, bindings)
    out: dict[str, dict[str, Any]] = {}
    for site_id, info in sites.items():
        others = [(oid, other) for oid, other in sorted(sites.items(), key=lambda kv: kv[1]["site_name"])
                  if oid != site_id and oid not in unable]
        peers = [{"site": other["site_name"], "address": other["address"], "cidrs": _same_version(other)}
                 for _oid, other in others if other["address"]]
        own6 = _v6_second(info) if v6.get(site_id) else []
        for oid, other in others:  # dual stack: the other IP version through the VPN services' v6 addresses
            if own6 and v6.get(oid) and _v6_second(other):
                peers.append({"site": f"{other['site_name']}{V6}", "address": v6[oid], "cidrs": _v6_second(other)})
        out[site_id] = {"local_cidrs": _same_version(info), "local_cidrs6": own6, "peers": peers}
    return out


#: the suffix of a peer's IPv6 connection (its IPv4 one carries the plain site name)
V6 = "#6"


def _v6_second(info: dict[str, Any]) -> list[str]:
    """A dual-stack site's IPv6 prefixes when its gateway (the primary connection) is IPv4."""
    if not info["address"] or ipaddress.ip_address(info["address"]).version != 4:
        return []
    return [c for c in info["cidrs"] if ipaddress.ip_network(c).version == 6]


def _v6_addresses(session: Session, resource: SyncResource, bindings: list[SyncBinding]) -> dict[str, str]:
    """Site id -> its VPN service's IPv6 address (``address6``, its router's IPv6 gateway), as the
    site's last successful run of the mesh reported it: known only once the service exists, so the
    IPv6 connections follow the IPv4 ones by one round (the next audit)."""
    results = _results(session, [b.task_id for b in bindings if b.task_id and b.status == "in-sync"])
    out: dict[str, str] = {}
    for b in bindings:
        result = results.get(b.task_id or "") if b.status == "in-sync" else _last_success(session, resource, b.site_id)
        if b.action == "ensure" and result and result.get("address6"):
            out[b.site_id] = str(result["address6"])
    return out


def _same_version(info: dict[str, Any]) -> list[str]:
    """The site's prefixes of its gateway address's IP version: VPNaaS drivers refuse a connection
    that mixes versions, so a dual-stack network's other-version prefix is not meshed."""
    if not info["address"]:
        return list(info["cidrs"])
    version = ipaddress.ip_address(info["address"]).version
    return [c for c in info["cidrs"] if ipaddress.ip_network(c).version == version]


def key_version(resource: SyncResource) -> int:
    """The generation of the mesh's current pre-shared key (1, then +1 per rotation)."""
    return int(resource.options.get("psk_version") or 1)


def rotate(resource: SyncResource, psk_box: str) -> int:
    """Make ``psk_box`` (a sealed new key) the mesh's key; its new generation."""
    version = key_version(resource) + 1
    resource.options = {**resource.options, "psk_box": psk_box, "psk_version": version}
    return version


def view(session: Session, resource: SyncResource, domain: RoutingDomain, *, network_name: str | None,
         bindings: list[SyncBinding]) -> dict[str, Any]:
    """What a user reads of a mesh: per site its binding's status and error, the VPN service's address,
    each connection's status and whether the site holds the current key (as of the site's last
    successful run, also while a newer one is pending or failed), never the key."""
    bindings = sorted(bindings, key=lambda b: b.site_name)
    task_ids = [b.task_id for b in bindings if b.task_id]
    results = _results(session, task_ids)
    current = key_version(resource)
    sites, stale = [], []
    for b in bindings:
        if b.status == "in-sync":
            result = dict(results.get(b.task_id or "") or {})
        else:  # a run is pending or failed: the last one that succeeded, if any
            result = _last_success(session, resource, b.site_id) if b.action == "ensure" else {}
        held = result.get("key_version")
        key_current = held is not None and int(held) == current
        if b.action == "ensure" and not key_current:
            stale.append(b.site_name)
        sites.append({"site_name": b.site_name, "status": b.status, "error": b.last_error,
                      "address": result.get("address"), "connections": result.get("connections") or {},
                      "key_current": key_current, "key_version": None if held is None else int(held)})
    return {"routing_domain": domain.name, "routing_domain_id": domain.id, "network": network_name,
            "network_id": resource.spec.get("network_id"), "state": resource.state,
            "ike_policy": resource.spec.get("ike_policy"), "ipsec_policy": resource.spec.get("ipsec_policy"),
            "psk_set": bool(resource.options.get("psk_box")), "key_version": current, "old_key_sites": stale,
            "operation_id": resource.operation_id,
            "sites": sites, "updated_at": resource.updated_at}
