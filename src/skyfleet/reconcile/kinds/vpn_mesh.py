"""``vpn.mesh``: one site's part of a routing domain meshed with site-to-site IPsec (Neutron VPNaaS).

Why it exists: sites that share nothing cannot share an L2 segment through public APIs, but where
their Neutron has VPNaaS their routers can tunnel to one another, so a declared network's per-site
subnets route together. In each site, in the network's owning project, this task keeps: an IKE and an
IPsec policy, a VPN service on the declared network's router (marked ``skyfleet:<network id>``), a
local endpoint group (the network's subnets there), and per peer site a peer endpoint group (the
peer's prefixes) and a connection to the peer's router gateway address with the mesh's pre-shared
key. Everything carries ``skyfleet:<mesh id>`` (``...:<peer site>`` for per-peer objects) in its
description, so a retry finds what an earlier attempt made, a peer that left has its connection
removed, and a user's own VPN objects are never touched. A dual-stack mesh adds an IPv6 local endpoint group
(``<mark>#6``) and per IPv6 peer (``<peer site>#6``) its group and connection: one IP version per
connection, as Neutron requires.

A site without the ``vpnaas`` extension fails with the clear, permanent per-site answer
"not available: the site's Neutron has no vpnaas extension"; its peers are told nothing of it (the
mesh leaves it out of their peers). The pre-shared key travels sealed in the payload and is opened
only here; it is compared with the site's (a drifted or rotated key is set back) and never returned.
A connection Neutron will not update (``PENDING_*``: no VPN agent took it up yet, for ever on a site
without one) is deleted and made again with the new key or peer address.
Each connection's status (Neutron's ``ACTIVE``/``DOWN``/``PENDING_*``) is reported in the result, as
of this run (the periodic converge pass runs it again).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack import networkapi, vpnapi
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.logs import SECRETS
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import IdentityRef, SyncPayload, site_project, verdict

#: the mark suffix of the IPv6 local endpoint group, and of a peer's IPv6 objects (``<mark>:<site>#6``)
V6 = "#6"


class Peer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    address: str = Field(min_length=1, max_length=64, description="the peer router's gateway address")
    cidrs: list[str] = Field(min_length=1, max_length=2)


class VpnMesh(SyncPayload):
    name: str = Field(min_length=1, max_length=255)
    network_id: str = Field(min_length=1, max_length=64, description="the declared network (its mark)")
    ike_policy: dict[str, Any] = Field(default_factory=dict)
    ipsec_policy: dict[str, Any] = Field(default_factory=dict)
    project: IdentityRef | None = None
    psk_box: str | None = Field(None, repr=False)  # the pre-shared key, sealed with the SecretBox
    psk_version: int = Field(1, ge=1, description="the key's generation (reported back once every connection has it)")
    local_cidrs: list[str] = Field(default_factory=list)
    local_cidrs6: list[str] = Field(default_factory=list, description="a dual-stack network's IPv6 prefixes, "
                                                                       "meshed with the peers named <site>#6")
    peers: list[Peer] = Field(default_factory=list)


def mark(p: VpnMesh) -> str:
    return f"skyfleet:{p.resource_id}"


def _psk(ctx: SiteContext, p: VpnMesh) -> str:
    if not p.psk_box or ctx.reveal is None:
        raise PermanentSiteError("a VPN mesh task needs its sealed pre-shared key")
    psk = str(ctx.reveal(p.psk_box)["psk"])
    SECRETS.add(psk)  # masked in every log line from now on
    return psk


def _one(conn: Any, collection: str, pid: str, mark_: str) -> dict[str, Any] | None:
    found = vpnapi.find_marked(conn, collection, project_id=pid, mark=mark_)
    return found[0] if found else None


def observe(ctx: SiteContext, p: VpnMesh) -> dict[str, Any]:
    if p.resource_id is None:
        raise PermanentSiteError("a VPN mesh task needs its resource id (Skyfleet's mark)")
    conn = ctx.connection()
    available = vpnapi.vpnaas_available(conn)
    if not available and p.action == "ensure":
        raise PermanentSiteError(vpnapi.NOT_AVAILABLE)
    seen: dict[str, Any] = {"action": p.action, "available": available, "key_version": p.psk_version}
    if not available:
        return seen
    pid = site_project(ctx, p.project, site_scope=p.site_scope)
    m = mark(p)
    seen.update(project_id=pid, ike=_one(conn, "ikepolicies", pid, m), ipsec=_one(conn, "ipsecpolicies", pid, m),
                service=_one(conn, "vpnservices", pid, m), local=_one(conn, "endpoint-groups", pid, m),
                local6=_one(conn, "endpoint-groups", pid, m + V6))
    peers = {peer.site for peer in p.peers}
    seen["groups"] = {g["description"][len(m) + 1:]: g for g in _prefixed(conn, "endpoint-groups", pid, m)}
    seen["links"] = {c["description"][len(m) + 1:]: c for c in _prefixed(conn, "ipsec-site-connections", pid, m)}
    if p.action == "ensure":
        router = networkapi.find_router(conn, project_id=pid, mark=f"skyfleet:{p.network_id}")
        if router is None:
            raise TemporarySiteError(f"the declared network has no router in site {ctx.site_name} yet")
        seen["router_id"] = router["id"]
        net = networkapi.find_network(conn, project_id=pid, mark=f"skyfleet:{p.network_id}")
        subnets = [networkapi.find_subnet(conn, network_id=net["id"], mark=f"skyfleet:{p.network_id}{suffix}")
                   for suffix in ("", "#2")] if net else []
        seen["subnet_ids"] = sorted(s["id"] for s in subnets if s and (not p.local_cidrs or s["cidr"] in p.local_cidrs))
        seen["subnet_ids6"] = sorted(s["id"] for s in subnets if s and s["cidr"] in p.local_cidrs6)
        if not seen["subnet_ids"]:
            raise TemporarySiteError(f"the declared network has no subnet in site {ctx.site_name} yet")
        psk = _psk(ctx, p)
        seen["key_ok"] = {site: vpnapi.connection_has_key(conn, link["id"], psk)
                          for site, link in seen["links"].items() if site in peers}
    return seen


def _prefixed(conn: Any, collection: str, pid: str, m: str) -> list[dict[str, Any]]:
    """The per-peer objects of the mesh (description ``<mark>:<peer site>``)."""
    return vpnapi.find_marked(conn, collection, project_id=pid, mark=m + ":", prefix=True)


def diff(p: VpnMesh, seen: dict[str, Any]) -> Plan | None:
    if p.action == "delete":
        if not seen["available"]:
            return None
        doomed = [("ipsec-site-connections", c["id"]) for c in seen["links"].values()]
        doomed += [("endpoint-groups", g["id"]) for g in seen["groups"].values()]
        doomed += [(col, seen[key]["id"]) for col, key in (("endpoint-groups", "local"), ("endpoint-groups", "local6"),
                                                           ("vpnservices", "service"), ("ipsecpolicies", "ipsec"),
                                                           ("ikepolicies", "ike"))
                   if seen[key]]
        return {"delete": doomed} if doomed else None
    steps: list[str] = [key for key in ("ike", "ipsec", "service") if seen[key] is None]
    if seen["local"] is None or sorted(seen["local"]["endpoints"]) != seen["subnet_ids"]:
        steps.append("local")
    wanted = {peer.site: peer for peer in p.peers}
    want6 = bool(seen["subnet_ids6"]) and any(site.endswith(V6) for site in wanted)
    if want6 and (seen["local6"] is None or sorted(seen["local6"]["endpoints"]) != seen["subnet_ids6"]):
        steps.append("local6")
    elif not want6 and seen["local6"] is not None:
        steps.append("drop local6")
    peer_steps: dict[str, str] = {}
    for site, peer in wanted.items():
        group, link = seen["groups"].get(site), seen["links"].get(site)
        local_changed = ("local6" if site.endswith(V6) else "local") in steps
        if group is None or sorted(group["endpoints"]) != sorted(peer.cidrs) or local_changed:
            peer_steps[site] = "replace" if (group or link) else "create"
        elif link is None:
            peer_steps[site] = "connect"
        elif link["peer_address"] != peer.address or not seen["key_ok"].get(site):
            peer_steps[site] = "update"
    gone = sorted((set(seen["groups"]) | set(seen["links"])) - set(wanted))
    if not steps and not peer_steps and not gone:
        return None
    return {"steps": steps, "peers": peer_steps, "gone": gone, "seen": seen}


def _drop_peer(conn: Any, seen: dict[str, Any], site: str) -> None:
    if site in seen["links"]:
        vpnapi.delete(conn, "ipsec-site-connections", seen["links"][site]["id"])
    if site in seen["groups"]:
        vpnapi.delete(conn, "endpoint-groups", seen["groups"][site]["id"])


def apply(ctx: SiteContext, p: VpnMesh, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if "delete" in plan:
        for collection, ident in plan["delete"]:
            vpnapi.delete(conn, collection, ident)
        return verdict("deleted", remote_id=None)
    seen = plan["seen"]
    pid, m, psk = str(seen["project_id"]), mark(p), _psk(ctx, p)
    for site in [*plan["gone"], *[s for s, step in plan["peers"].items() if step == "replace"]]:
        _drop_peer(conn, seen, site)
    if "local" in plan["steps"] and seen["local"] is not None:  # every peer was dropped above ("replace")
        vpnapi.delete(conn, "endpoint-groups", seen["local"]["id"])
    if ("local6" in plan["steps"] or "drop local6" in plan["steps"]) and seen["local6"] is not None:
        vpnapi.delete(conn, "endpoint-groups", seen["local6"]["id"])  # its peers went above (replace, gone)
    ike = seen["ike"] or vpnapi.create_ike_policy(conn, project_id=pid, name=p.name, mark=m, settings=p.ike_policy)
    ipsec = seen["ipsec"] or vpnapi.create_ipsec_policy(conn, project_id=pid, name=p.name, mark=m,
                                                        settings=p.ipsec_policy)
    service = seen["service"] or vpnapi.create_vpn_service(conn, project_id=pid, name=p.name, mark=m,
                                                           router_id=seen["router_id"])
    local = seen["local"] if "local" not in plan["steps"] else vpnapi.create_endpoint_group(
        conn, project_id=pid, name=f"{p.name}-local", mark=m, kind="subnet", endpoints=seen["subnet_ids"])
    local6 = seen["local6"] if "local6" not in plan["steps"] else vpnapi.create_endpoint_group(
        conn, project_id=pid, name=f"{p.name}-local6", mark=m + V6, kind="subnet", endpoints=seen["subnet_ids6"])
    for peer in p.peers:
        step = plan["peers"].get(peer.site)
        if step in ("replace", "create"):
            group = vpnapi.create_endpoint_group(conn, project_id=pid, name=f"{p.name}-{peer.site}",
                                                 mark=f"{m}:{peer.site}", kind="cidr", endpoints=peer.cidrs)
            step = "connect"
        else:
            group = seen["groups"].get(peer.site)
        if step == "update" and vpnapi.update_site_connection(conn, seen["links"][peer.site]["id"],
                                                              peer_address=peer.address, psk=psk) is None:
            vpnapi.delete(conn, "ipsec-site-connections", seen["links"][peer.site]["id"])  # PENDING_*: replace it
            step = "connect"
        own = local6 if peer.site.endswith(V6) else local
        if step == "connect" and group is not None and own is not None:
            vpnapi.create_site_connection(conn, project_id=pid, name=f"{p.name}-{peer.site}", mark=f"{m}:{peer.site}",
                                          vpnservice_id=service["id"], ikepolicy_id=ike["id"],
                                          ipsecpolicy_id=ipsec["id"], local_ep_group_id=own["id"],
                                          peer_ep_group_id=group["id"], peer_address=peer.address, psk=psk)
    detail = ", ".join([*plan["steps"], *(f"{step} {site}" for site, step in sorted(plan["peers"].items())),
                        *(f"remove {site}" for site in plan["gone"])])
    return {**summary(observe(ctx, p)), "detail": detail}


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    if seen["action"] == "delete":
        return verdict("absent", remote_id=None)
    service = seen["service"] or {}
    return verdict("in-sync", remote_id=service.get("id"), created=True,
                   address=service.get("external_v4_ip") or service.get("external_v6_ip"),
                   address6=service.get("external_v6_ip"),
                   connections={site: str(link.get("status")) for site, link in sorted(seen["links"].items())},
                   key_version=seen["key_version"] if all(seen.get("key_ok", {}).values()) else None)


KIND = register(TaskKind(name="vpn.mesh",
                         description="Converge one site's part of a routing domain's IPsec mesh (VPNaaS).",
                         payload=VpnMesh, observe=observe, diff=diff, apply=apply, summary=summary,
                         persistent=True))
