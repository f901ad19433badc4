"""``sync.network``: converge one declared network in one site (ensure or delete).

Why it exists: a tenant network declared once is, in each placed site, a network, one subnet of the
prefix the site was given from the address pool (``cidr``, per site), and optionally a router with an
interface on that subnet and an external gateway. All of it lives in the owning project mapped onto
the site, and every object carries Skyfleet's mark (``skyfleet:<declared network id>`` in its
description): the task finds only what it made, so a retry after a crash completes the half-made
network instead of making a second one, and a user's own objects are never touched.

Drift repaired: a missing network, subnet, router or interface is made again; a subnet whose CIDR or
gateway differs is replaced (Neutron cannot change them); DHCP and nameservers are set back; the
router's gateway is moved or cleared; a router no longer asked for is removed. Delete removes the
marked router (interface first) and the marked network with its subnet.

Dual stack: a second subnet of the other IP version (``second_subnet``, its prefix ``cidr2``, its mark
``skyfleet:<id>#2``), on the router too. ``security_group.allow_internal``: a marked group
``<name>-internal`` letting in every site's prefixes (``internal_cidrs``). A network still used by
ports other than its DHCP and router ports is not deleted: the site fails with the reason (a Neutron
409 during the delete says the same), unless ``purge`` deletes those ports first. Each run reports the
router's gateway address (``gateway_ip``): where a VPN mesh's peers connect.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.networks.service import is_infra_port
from skyfleet.domains.text import Name
from skyfleet.drivers.openstack import networkapi, syncapi
from skyfleet.errors import PermanentSiteError, SiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import IdentityRef, SyncPayload, site_project, verdict


class RouterSpec(BaseModel):
    """The network's router: on or off, and the external network (id or name in each site) of its gateway."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    external_network: Name | None = Field(None, max_length=255)


class InternalGroup(BaseModel):
    """A security group ``<name>-internal`` that lets in any traffic from the network's own prefixes
    (every site's): what servers of the network on several sites need to talk to one another."""

    model_config = ConfigDict(extra="forbid")

    allow_internal: bool = True


class SecondSubnet(BaseModel):
    """Dual stack: a second subnet, of the other IP version, from its own pool."""

    model_config = ConfigDict(extra="forbid")

    pool: Name = Field(min_length=1, max_length=255)
    prefix_length: int = Field(64, ge=1, le=128)


class NetworkSync(SyncPayload):
    name: Name = Field(min_length=1, max_length=255)
    pool: Name | None = Field(None, min_length=1, max_length=255,
                              description="the address pool the prefixes come from (none: declared with cidrs)")
    prefix_length: int | None = Field(None, ge=1, le=128)
    enable_dhcp: bool = True
    gateway: bool = True
    dns_nameservers: list[str] = Field(default_factory=list, max_length=5)
    router: RouterSpec = Field(default_factory=RouterSpec)
    project: IdentityRef | None = None
    second_subnet: SecondSubnet | None = None
    security_group: InternalGroup | None = None
    internal_cidrs: list[str] = Field(default_factory=list, description="every site's prefixes (per-site payload)")
    cidr: str | None = Field(None, max_length=64, description="this site's prefix (per-site payload)")
    cidr2: str | None = Field(None, max_length=64, description="this site's prefix of the second subnet")


def mark(p: NetworkSync) -> str:
    return f"skyfleet:{p.resource_id}"


def wanted(p: NetworkSync) -> list[tuple[str, str, str | None]]:
    """(key, mark, cidr) of each subnet: "subnet" (the pool's) and, for dual stack, "subnet2" (its mark
    ends in ``#2``, so each is found again by its own mark)."""
    out: list[tuple[str, str, str | None]] = [("subnet", mark(p), p.cidr)]
    if p.second_subnet is not None:
        out.append(("subnet2", f"{mark(p)}#2", p.cidr2))
    return out


def observe(ctx: SiteContext, p: NetworkSync) -> dict[str, Any]:
    if p.resource_id is None:
        raise PermanentSiteError("a declared network task needs its resource id (Skyfleet's mark)")
    conn = ctx.connection()
    project_id = site_project(ctx, p.project, site_scope=p.site_scope)
    net = networkapi.find_network(conn, project_id=project_id, mark=mark(p))
    router = networkapi.find_router(conn, project_id=project_id, mark=mark(p))
    attached = sorted(networkapi.router_subnets(conn, router["id"])) if router else []
    seen: dict[str, Any] = {"action": p.action, "project_id": project_id, "network": net, "router": router,
                            "attached": attached, "external_id": None, "in_use": []}
    if p.action == "delete" and net is not None:
        seen["in_use"] = sorted(port["id"] for port in networkapi.network_ports(conn, net["id"])
                                if not is_infra_port(port.get("device_owner")))
        if seen["in_use"] and not p.purge:
            raise PermanentSiteError(_in_use(ctx.site_name, len(seen["in_use"])))
    for key, subnet_mark, _cidr in wanted(p):
        seen[key] = networkapi.find_subnet(conn, network_id=net["id"], mark=subnet_mark) if net else None
    seen["group"] = networkapi.find_security_group(conn, project_id=project_id, mark=mark(p))
    if p.action == "ensure":
        if not p.cidr or (p.second_subnet is not None and not p.cidr2):
            if p.pool is None:
                raise PermanentSiteError(f"no CIDR was given for site {ctx.site_name}: the network was declared "
                                         "with cidrs; PATCH it with cidrs for this site")
            raise PermanentSiteError(f"no prefix of pool {p.pool!r} was allocated for site {ctx.site_name}")
        if p.router.enabled and p.router.external_network:
            seen["external_id"] = networkapi.find_external_network(conn, p.router.external_network)
            if seen["external_id"] is None:
                raise PermanentSiteError(f"no external network {p.router.external_network!r} in site {ctx.site_name}")
    return seen


def gateway_ip(router: dict[str, Any] | None) -> str | None:
    """The router's external (gateway) IPv4 address, else its first one: where a VPN peer connects."""
    ips = [str(ip["ip_address"]) for ip in ((router or {}).get("external_gateway_info") or {})
           .get("external_fixed_ips") or []]
    return next((ip for ip in ips if ":" not in ip), ips[0] if ips else None)


def internal_wanted(p: NetworkSync) -> bool:
    return p.security_group is not None and p.security_group.allow_internal


def _rule_changes(p: NetworkSync, group: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """(prefixes to let in, ids of ingress rules to remove) of the internal group: one ingress rule
    of any protocol per prefix; Neutron's own egress rules are left alone."""
    wanted = set(p.internal_cidrs) if internal_wanted(p) else set()
    rules = [r for r in (group or {}).get("security_group_rules") or [] if r.get("direction") == "ingress"]
    have = {str(r.get("remote_ip_prefix")): r for r in rules if r.get("remote_ip_prefix") and not r.get("protocol")}
    drop = [str(r["id"]) for r in rules if str(r.get("remote_ip_prefix")) not in wanted or r.get("protocol")]
    return sorted(wanted - set(have)), sorted(drop)


def _apply_group(conn: Any, p: NetworkSync, plan: Plan, project_id: str) -> str | None:
    """Make the internal group, set its rules, or remove it; its id (None: none)."""
    steps, group = plan["steps"], plan["group"]
    if "remove security group" in steps:
        syncapi.delete_security_group(conn, group["id"])
        return None
    if "security group" in steps:
        group = syncapi.create_security_group(conn, name=f"{p.name}-internal", description=mark(p),
                                              project_id=project_id)
        plan = {**plan, "rules": {"add": sorted(set(p.internal_cidrs)), "drop": []}}
    if group is None:
        return None
    for rule_id in plan["rules"]["drop"]:
        syncapi.delete_rule(conn, rule_id)
    for cidr in plan["rules"]["add"]:
        syncapi.create_rule(conn, {"security_group_id": group["id"], "direction": "ingress",
                                   "ethertype": "IPv6" if ":" in cidr else "IPv4", "remote_ip_prefix": cidr,
                                   "project_id": project_id})
    return str(group["id"])


def _in_use(site: str, count: int) -> str:
    return (f"network still in use in site {site}: {count} port{'s' if count > 1 else ''} besides its DHCP and "
            "router ports (servers' ports); delete them first, or delete the network with purge=true")


def _subnet_differs(p: NetworkSync, cidr: str | None, subnet: dict[str, Any]) -> bool:
    return subnet.get("cidr") != cidr or bool(subnet.get("gateway_ip")) != p.gateway


def _subnet_steps(p: NetworkSync, seen: dict[str, Any], attached: set[str]) -> tuple[list[str], list[str]]:
    """The steps of each subnet ("subnet", "replace subnet2", ...), and the subnets needing a router
    interface (made or replaced, or not attached)."""
    steps, interfaces = [], []
    for key, _mark, cidr in wanted(p):
        subnet = seen.get(key)
        if subnet is None or seen["network"] is None:
            steps.append(key)
        elif _subnet_differs(p, cidr, subnet):
            steps.append(f"replace {key}")
        elif subnet.get("enable_dhcp") != p.enable_dhcp or \
                list(subnet.get("dns_nameservers") or []) != p.dns_nameservers:
            steps.append(f"{key} options")
        if subnet is None or seen["network"] is None or f"replace {key}" in steps or subnet["id"] not in attached:
            interfaces.append(key)
    return steps, interfaces


def diff(p: NetworkSync, seen: dict[str, Any]) -> Plan | None:
    net, router = seen["network"], seen["router"]
    attached = set(seen["attached"])
    if p.action == "delete":
        if net is None and router is None and seen["group"] is None:
            return None
        return {"delete": True, "network_id": net and net["id"], "router_id": router and router["id"],
                "detach": sorted(attached), "ports": seen["in_use"],
                "group_id": seen["group"] and seen["group"]["id"]}
    steps: list[str] = ["network"] if net is None else []
    subnet_steps, interfaces = _subnet_steps(p, seen, attached)
    steps += subnet_steps
    if p.router.enabled:
        gateway = ((router or {}).get("external_gateway_info") or {}).get("network_id")
        if router is None:
            steps.append("router")
        elif gateway != seen["external_id"]:
            steps.append("gateway")
        steps += [f"interface {key}" if key != "subnet" else "interface" for key in interfaces]
    elif router is not None:
        steps.append("remove router")
    add, drop = _rule_changes(p, seen["group"])
    if internal_wanted(p) and seen["group"] is None:
        steps.append("security group")
    elif add or drop:
        steps.append("security group rules")
    if not internal_wanted(p) and seen["group"] is not None:
        steps.append("remove security group")
    if not steps:
        return None
    return {"steps": steps, "project_id": seen["project_id"], "network_id": net and net["id"],
            "subnet_ids": {key: seen[key] and seen[key]["id"] for key, _m, _c in wanted(p)},
            "router_id": router and router["id"], "attached": sorted(attached), "external_id": seen["external_id"],
            "gateway_ip": gateway_ip(router), "group": seen["group"], "rules": {"add": add, "drop": drop}}


def _delete(ctx: SiteContext, conn: Any, plan: Plan) -> dict[str, Any]:
    """Ports first (``purge`` only: without it the observation refused), then router, then network. A
    409 of Neutron here (a port made since the observation) fails this site with the reason instead of
    being retried for ever."""
    try:
        for port_id in plan.get("ports") or []:
            networkapi.delete_port(conn, port_id)
        if plan["router_id"]:
            for subnet_id in plan["detach"]:
                networkapi.remove_router_interface(conn, plan["router_id"], subnet_id)
            networkapi.delete_router(conn, plan["router_id"])
        if plan["network_id"]:
            networkapi.delete_network(conn, plan["network_id"])
        if plan.get("group_id"):
            syncapi.delete_security_group(conn, plan["group_id"])
    except SiteError as exc:
        if exc.status != 409:
            raise
        raise PermanentSiteError(f"site {ctx.site_name} refused the delete, something still uses the network "
                                 f"({exc.message[:300]}); delete with purge=true to remove its ports",
                                 status=409) from exc
    return verdict("deleted", remote_id=None)


def _apply_subnets(conn: Any, p: NetworkSync, plan: Plan, net_id: str, router_id: str | None) -> dict[str, str]:
    """Make, replace or set back each subnet; their ids by key."""
    steps, ids, project_id = plan["steps"], dict(plan["subnet_ids"]), str(plan["project_id"])
    for key, subnet_mark, cidr in wanted(p):
        if f"replace {key}" in steps:
            if router_id and ids[key] in plan["attached"]:
                networkapi.remove_router_interface(conn, router_id, ids[key])
            networkapi.delete_subnet(conn, ids[key])
        if key in steps or f"replace {key}" in steps:
            ids[key] = networkapi.create_subnet(conn, network_id=net_id, project_id=project_id, name=p.name,
                                                mark=subnet_mark, cidr=str(cidr), gateway=p.gateway,
                                                enable_dhcp=p.enable_dhcp, dns_nameservers=p.dns_nameservers)["id"]
        if f"{key} options" in steps:
            networkapi.update_subnet(conn, ids[key], enable_dhcp=p.enable_dhcp, dns_nameservers=p.dns_nameservers)
    return ids


def apply(ctx: SiteContext, p: NetworkSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if plan.get("delete"):
        return _delete(ctx, conn, plan)
    steps, project_id = plan["steps"], str(plan["project_id"])
    net_id, router_id = plan["network_id"], plan["router_id"]
    if "network" in steps:
        net_id = networkapi.create_network(conn, name=p.name, project_id=project_id, mark=mark(p))["id"]
    ids = _apply_subnets(conn, p, plan, net_id, router_id)
    gateway = plan.get("gateway_ip")
    if "router" in steps:
        router = networkapi.create_router(conn, name=p.name, project_id=project_id, mark=mark(p),
                                          external_network_id=plan["external_id"])
        router_id, gateway = router["id"], gateway_ip(router)
    if "gateway" in steps:
        gateway = gateway_ip(networkapi.set_router_gateway(conn, router_id, plan["external_id"]))
    for key, _mark, _cidr in wanted(p):
        if ("interface" if key == "subnet" else f"interface {key}") in steps:
            networkapi.add_router_interface(conn, router_id, ids[key])
    if "remove router" in steps:
        for attached in plan["attached"]:
            networkapi.remove_router_interface(conn, router_id, attached)
        networkapi.delete_router(conn, router_id)
        router_id = gateway = None
    group_id = _apply_group(conn, p, plan, project_id)
    made = "network" in steps
    return verdict("in-sync", remote_id=net_id, created=True, detail="created" if made else ", ".join(steps),
                   cidr=p.cidr, subnet_id=ids["subnet"], router_id=router_id, gateway_ip=gateway,
                   security_group_id=group_id,
                   **({"cidr2": p.cidr2, "subnet2_id": ids["subnet2"]} if "subnet2" in ids else {}))


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    if seen["action"] == "delete":
        return verdict("absent", remote_id=None)
    net, subnet, router = seen["network"], seen["subnet"], seen["router"]
    return verdict("in-sync", remote_id=net["id"], created=True, cidr=subnet and subnet.get("cidr"),
                   subnet_id=subnet and subnet["id"], router_id=router and router["id"], gateway_ip=gateway_ip(router))


KIND = register(TaskKind(name="sync.network",
                         description="Converge a declared network (network, subnet, router) in one site.",
                         payload=NetworkSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         persistent=True))
