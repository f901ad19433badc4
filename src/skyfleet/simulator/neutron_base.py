"""Shared pieces of the simulated Neutron: error bodies, quotas, IP/MAC allocation, default security
groups and tenant visibility.

Why it exists: ports are created both by the network API and by nova when a server boots, and every
neutron resource shares the same error shape, standard attributes and quota accounting.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from typing import Any

from aiohttp import web

from .httpkit import Ctx, json_response
from .state import Resource, Site, iso, new_id

TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
         405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 500: "HTTPInternalServerError",
         503: "ServiceUnavailable"}
QUOTA_DEFAULTS: dict[str, int] = {"network": 100, "subnet": 100, "subnetpool": -1, "port": 500,
                                  "router_route": 30, "router": 10, "floatingip": 50, "rbac_policy": 10,
                                  "security_group": 10, "security_group_rule": 100}
QUOTA_TABLE = {"network": "networks", "subnet": "subnets", "subnetpool": "subnetpools", "port": "ports",
               "router": "routers", "floatingip": "floatingips", "security_group": "security_groups",
               "security_group_rule": "security_group_rules"}
ADMIN_ONLY_PREFIXES = ("provider:", "binding:host_id", "binding:profile", "binding:vif_")


def error(ctx: Ctx | None, status: int, message: str, kind: str | None = None) -> web.Response:
    return json_response({"NeutronError": {"type": kind or TYPES.get(status, "HTTPError"), "message": message,
                                           "detail": ""}}, status)


def standard(ctx: Ctx, body: dict[str, Any], project_id: str | None = None) -> Resource:
    """The standard attributes every neutron resource carries."""
    now = iso(time.time())
    project = project_id or (body.get("project_id") or body.get("tenant_id") if ctx.is_admin else None) \
        or ctx.project_id
    return {"id": new_id(), "name": body.get("name", ""), "tenant_id": project, "project_id": project,
            "description": body.get("description", ""), "created_at": now, "updated_at": now,
            "revision_number": 0, "tags": []}


def touch(resource: Resource) -> None:
    resource["updated_at"] = iso(time.time())
    resource["revision_number"] = resource.get("revision_number", 0) + 1


def quota_limits(site: Site, project_id: str) -> dict[str, int]:
    return {**QUOTA_DEFAULTS, **site.neutron.quotas.get(project_id, {})}


def used(site: Site, project_id: str) -> dict[str, int]:
    neutron = site.neutron
    result = {}
    for key, table in QUOTA_TABLE.items():
        result[key] = sum(1 for r in getattr(neutron, table).values() if r.get("project_id") == project_id)
    result["rbac_policy"] = 0
    result["router_route"] = sum(len(r.get("routes") or []) for r in neutron.routers.values()
                                 if r.get("project_id") == project_id)
    return result


def check_quota(ctx: Ctx, resource: str, project_id: str, count: int = 1) -> web.Response | None:
    forced = ctx.faults is not None and ctx.faults.quota_exceeded
    limit = quota_limits(ctx.site, project_id)[resource]
    if forced or (limit >= 0 and used(ctx.site, project_id)[resource] + count > limit):
        return error(ctx, 409, f"Quota exceeded for resources: ['{resource}'].", "OverQuota")
    return None


def visible(ctx: Ctx, resource: Resource) -> bool:
    if ctx.is_admin or resource.get("project_id") == ctx.project_id:
        return True
    return bool(resource.get("shared") or resource.get("router:external"))


def view(ctx: Ctx, resource: Resource, fields: list[str] | None = None) -> Resource:
    result = {k: v for k, v in resource.items() if not k.startswith("_")}
    if not ctx.is_admin:
        for key in [k for k in result if k.startswith(ADMIN_ONLY_PREFIXES)]:
            del result[key]
    if fields:
        result = {k: v for k, v in result.items() if k in fields}
    return result


# --- IP and MAC allocation -------------------------------------------------------------------------

def next_mac(site: Site) -> str:
    n = site.neutron.next_mac
    site.neutron.next_mac += 1
    return f"fa:16:3e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def allocate_ip(subnet: Resource, wanted: str | None = None) -> str | None:
    taken: set[str] = subnet["_allocated"]
    if wanted:
        if wanted in taken or ipaddress.ip_address(wanted) not in ipaddress.ip_network(subnet["cidr"]):
            return None
        taken.add(wanted)
        return wanted
    make = ipaddress.IPv6Address if ipaddress.ip_network(subnet["cidr"]).version == 6 else ipaddress.IPv4Address
    for pool in subnet["allocation_pools"]:
        start, end = int(ipaddress.ip_address(pool["start"])), int(ipaddress.ip_address(pool["end"]))
        cursor = max(start, subnet.get("_cursor", start))
        # lazily: a v6 /64 pool has 2**64 addresses, which no list holds
        for candidate in itertools.chain(range(cursor, end + 1), range(start, cursor)):
            text = str(make(candidate))
            if text not in taken:
                taken.add(text)
                subnet["_cursor"] = candidate + 1
                return text
    return None


def allocate_port(site: Site, project_id: str, network_id: str, *, device_id: str = "", device_owner: str = "",
                  fixed_ip: str | None = None, name: str = "", ctx: Ctx | None = None,
                  body: dict[str, Any] | None = None) -> Resource | str:
    """A new port with an IP from the network's first subnet (per IP version); a string is an error."""
    neutron = site.neutron
    network = neutron.networks.get(network_id)
    if network is None:
        return f"Network {network_id} could not be found."
    body = body or {}
    fixed_ips: list[dict[str, str]] = []
    requested = body.get("fixed_ips")
    subnets = [neutron.subnets[s] for s in network["subnets"] if s in neutron.subnets]
    if requested is None:
        requested = [{"ip_address": fixed_ip}] if fixed_ip else \
            [{"subnet_id": s["id"]} for s in _first_per_version(subnets)]
    for item in requested:
        subnet = neutron.subnets.get(item.get("subnet_id", "")) if item.get("subnet_id") else None
        if subnet is None and item.get("ip_address"):
            addr = ipaddress.ip_address(item["ip_address"])
            subnet = next((s for s in subnets if addr in ipaddress.ip_network(s["cidr"])), None)
        if subnet is None or subnet["network_id"] != network_id:
            return f"Invalid input for operation: Failed to allocate subnet for network {network_id}."
        wanted = item.get("ip_address")
        if wanted and ipaddress.ip_address(wanted) not in ipaddress.ip_network(subnet["cidr"]):
            return f"IP address {wanted} is not a valid IP for the specified subnet."
        ip = allocate_ip(subnet, wanted)
        if ip is None:
            for done in fixed_ips:
                neutron.subnets[done["subnet_id"]]["_allocated"].discard(done["ip_address"])
            if item.get("ip_address"):
                return f"IP address {item['ip_address']} already allocated in subnet {subnet['id']}."
            return f"No more IP addresses available on network {network_id}."
        fixed_ips.append({"subnet_id": subnet["id"], "ip_address": ip})
    now = iso(time.time())
    groups = body.get("security_groups")
    if groups is None and not device_owner.startswith("network:"):
        groups = [default_security_group(site, project_id)["id"]]
    port: Resource = {
        "id": new_id(), "name": name or body.get("name", ""), "network_id": network_id, "tenant_id": project_id,
        "project_id": project_id, "mac_address": body.get("mac_address") or next_mac(site),
        "admin_state_up": body.get("admin_state_up", True), "status": "ACTIVE" if device_id else "DOWN",
        "device_owner": device_owner, "device_id": device_id, "fixed_ips": fixed_ips,
        "allowed_address_pairs": body.get("allowed_address_pairs", []), "extra_dhcp_opts": [],
        "security_groups": groups or [], "description": body.get("description", ""),
        "binding:vnic_type": body.get("binding:vnic_type", "normal"),
        "binding:host_id": body.get("binding:host_id", ""),
        "binding:profile": body.get("binding:profile", {}), "binding:vif_type": "unbound", "binding:vif_details": {},
        "port_security_enabled": body.get("port_security_enabled", network.get("port_security_enabled", True)),
        "dns_name": "", "dns_assignment": [], "ip_allocation": "immediate", "qos_policy_id": None,
        "qos_network_policy_id": None, "propagate_uplink_status": False, "tags": [], "created_at": now,
        "updated_at": now, "revision_number": 1,
    }
    neutron.ports[port["id"]] = port
    return port


def _first_per_version(subnets: list[Resource]) -> list[Resource]:
    seen: dict[int, Resource] = {}
    for subnet in subnets:
        seen.setdefault(subnet["ip_version"], subnet)
    return list(seen.values())


def release_port(site: Site, port: Resource) -> None:
    neutron = site.neutron
    for fixed in port["fixed_ips"]:
        subnet = neutron.subnets.get(fixed["subnet_id"])
        if subnet is not None:
            subnet["_allocated"].discard(fixed["ip_address"])
    for fip in neutron.floatingips.values():
        if fip["port_id"] == port["id"]:
            fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
    neutron.ports.pop(port["id"], None)


def release_ports(site: Site, device_id: str) -> None:
    for port in [p for p in site.neutron.ports.values() if p["device_id"] == device_id]:
        release_port(site, port)


# --- security groups -------------------------------------------------------------------------------

def new_rule(group: Resource, direction: str, ethertype: str, *, remote_group: str | None = None,
             protocol: str | None = None, port_min: int | None = None, port_max: int | None = None,
             remote_ip_prefix: str | None = None, description: str | None = None) -> Resource:
    """A rule; neutron's own rules (a new group's) have a null description, API-made ones "" at least."""
    now = iso(time.time())
    prefix = remote_ip_prefix
    return {"id": new_id(), "security_group_id": group["id"], "direction": direction, "ethertype": ethertype,
            "protocol": protocol, "port_range_min": port_min, "port_range_max": port_max,
            "remote_ip_prefix": prefix, "remote_group_id": remote_group, "remote_address_group_id": None,
            "normalized_cidr": str(ipaddress.ip_network(prefix, strict=False)) if prefix else None,
            "description": description, "tenant_id": group["project_id"], "project_id": group["project_id"],
            "belongs_to_default_sg": group["name"] == "default", "tags": [], "created_at": now,
            "updated_at": now, "revision_number": 0}


def new_security_group(site: Site, project_id: str, name: str, description: str, *, default: bool) -> Resource:
    now = iso(time.time())
    group: Resource = {"id": new_id(), "name": name, "description": description, "tenant_id": project_id,
                       "project_id": project_id, "stateful": True, "shared": False, "tags": [],
                       "created_at": now, "updated_at": now, "revision_number": 1, "security_group_rules": []}
    rules = [new_rule(group, "egress", "IPv4"), new_rule(group, "egress", "IPv6")]
    if default:
        rules += [new_rule(group, "ingress", "IPv4", remote_group=group["id"]),
                  new_rule(group, "ingress", "IPv6", remote_group=group["id"])]
    site.neutron.security_groups[group["id"]] = group
    for rule in rules:
        site.neutron.security_group_rules[rule["id"]] = rule
    return group


def default_security_group(site: Site, project_id: str) -> Resource:
    """Like neutron, every project gets a "default" group the first time it touches the network API."""
    for group in site.neutron.security_groups.values():
        if group["project_id"] == project_id and group["name"] == "default":
            return group
    return new_security_group(site, project_id, "default", "Default security group", default=True)


def group_view(ctx: Ctx, group: Resource, fields: list[str] | None = None) -> Resource:
    rules = [view(ctx, r) for r in ctx.site.neutron.security_group_rules.values()
             if r["security_group_id"] == group["id"]]
    return view(ctx, {**group, "security_group_rules": rules}, fields)
