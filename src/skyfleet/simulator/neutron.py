"""Simulated Neutron (network v2.0): networks, subnets, subnet pools, ports, routers, floating IPs,
security groups and rules, quotas (with details) and extensions.

Why it exists: Skyfleet's IPAM and network sync go through openstacksdk's network proxy; this
module answers those calls with neutron's shapes, filters, pagination, policy and quota errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import neutron_vpn
from .httpkit import Ctx, int_param, json_response, next_href, page_size, paginate
from .neutron_base import (
    QUOTA_DEFAULTS,
    allocate_port,
    check_quota,
    default_security_group,
    error,
    group_view,
    new_rule,
    new_security_group,
    quota_limits,
    release_port,
    standard,
    touch,
    used,
    view,
    visible,
)
from .neutron_extras import (
    check_nameservers,
    create_floatingip,
    create_router,
    create_subnet,
    create_subnetpool,
    router_interface,
    set_gateway,
)
from .state import Resource

Creator = Callable[[Ctx, dict[str, Any]], Awaitable[Resource | web.Response]]
# collection -> (singular, not-found type, not-found message)
KINDS: dict[str, tuple[str, str, str]] = {
    "networks": ("network", "NetworkNotFound", "Network {} could not be found."),
    "subnets": ("subnet", "SubnetNotFound", "Subnet {} could not be found."),
    "subnetpools": ("subnetpool", "SubnetPoolNotFound", "Subnet pool {} could not be found."),
    "ports": ("port", "PortNotFound", "Port {} could not be found."),
    "routers": ("router", "RouterNotFound", "Router {} could not be found."),
    "floatingips": ("floatingip", "FloatingIPNotFound", "Floating IP {} could not be found"),
    "security-groups": ("security_group", "SecurityGroupNotFound", "Security group {} does not exist"),
    "security-group-rules": ("security_group_rule", "SecurityGroupRuleNotFound",
                             "Security group rule {} does not exist"),
}
PAGING = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "tags", "tags-any", "not-tags",
          "not-tags-any"}
EXTENSIONS = ["address-scope", "agent", "allowed-address-pairs", "availability_zone", "binding", "default-subnetpools",
              "dhcp_agent_scheduler", "dns-integration", "external-net", "extra_dhcp_opt", "extraroute", "ext-gw-mode",
              "l3_agent_scheduler", "multi-provider", "net-mtu", "network_availability_zone", "port-security",
              "project-id", "provider", "quotas", "quota_details", "rbac-policies", "router",
              "router_availability_zone",
              "security-group", "segment", "service-type", "standard-attr-description", "standard-attr-revisions",
              "standard-attr-tag", "standard-attr-timestamp", "subnet_allocation", "subnetpool-prefix-ops",
              "stateful-security-group", "tag-ports-during-bulk-creation"]


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    if ctx.method == "GET" and ctx.path == "/":
        return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                            "links": [{"href": f"{ctx.base}/v2.0/", "rel": "self"}]}]})
    return None


def table(ctx: Ctx, collection: str) -> dict[str, Resource]:
    result: dict[str, Resource] = getattr(ctx.site.neutron, collection.replace("-", "_"))
    return result


def _missing(ctx: Ctx, collection: str, ident: str) -> web.Response:
    _, kind, message = KINDS[collection]
    return error(ctx, 404, message.format(ident), kind)


def _matches(resource: Resource, key: str, values: list[str]) -> bool:
    value = resource.get(key)
    if isinstance(value, bool):
        return str(value).lower() in [v.lower() for v in values]
    if key == "fixed_ips":
        return any(any(f"ip_address={f['ip_address']}" == v or f"subnet_id={f['subnet_id']}" == v
                       for f in value or []) for v in values)
    return str(value) in values if value is not None else "" in values or "None" in values


async def handle(ctx: Ctx) -> web.StreamResponse:
    parts = [p for p in ctx.path.split("/") if p]
    if not parts or parts[0] != "v2.0" or ctx.path == "/v2.0":
        return error(ctx, 404, "The resource could not be found.")
    parts = [p.removesuffix(".json") for p in parts[1:]]
    method = ctx.method
    if not parts:  # neutron's /v2.0/ lists the core resources only
        return json_response({"resources": [{"name": KINDS[c][0], "collection": c,
                                             "links": [{"rel": "self", "href": f"{ctx.base}/v2.0/{c}"}]}
                                            for c in ("networks", "subnets", "subnetpools", "ports")]})
    head = parts[0]
    if head == "extensions":
        aliases = EXTENSIONS + (neutron_vpn.EXTENSIONS if ctx.site.neutron.vpnaas else [])
        return json_response({"extensions": [{"alias": a, "name": a, "description": a,
                                              "updated": "2025-01-01T00:00:00Z",
                                              "links": []} for a in aliases]})
    if head == "vpn":
        return await neutron_vpn.handle(ctx, parts[1:])
    if head == "quotas":
        return await quotas(ctx, parts[1:])
    if head not in KINDS:
        return error(ctx, 404, "The resource could not be found.")
    if len(parts) == 1:
        if method == "GET":
            return list_resources(ctx, head)
        if method == "POST":
            return await create(ctx, head)
    elif len(parts) == 2:
        if method == "GET":
            return show(ctx, head, parts[1])
        if method == "PUT":
            return await update(ctx, head, parts[1])
        if method == "DELETE":
            return delete(ctx, head, parts[1])
    elif head == "routers" and len(parts) == 3 and method == "PUT" and \
            parts[2] in ("add_router_interface", "remove_router_interface"):
        router = table(ctx, "routers").get(parts[1])
        if router is None or not visible(ctx, router):
            return _missing(ctx, "routers", parts[1])
        return await router_interface(ctx, router, parts[2] == "add_router_interface")
    elif len(parts) >= 3 and parts[2] == "tags":
        return await tags(ctx, head, parts[1], parts[3] if len(parts) > 3 else None)
    return error(ctx, 405 if method not in ("GET", "POST") else 404, "The resource could not be found.")


def list_resources(ctx: Ctx, collection: str) -> web.Response:
    q = ctx.query
    if collection == "security-groups" and not ctx.is_admin:
        default_security_group(ctx.site, ctx.project_id)
    fields = q.getall("fields", []) or None
    items = [r for r in table(ctx, collection).values() if visible(ctx, r)]
    for key in set(q.keys()) - PAGING:
        values = q.getall(key)
        field = "project_id" if key == "tenant_id" else key
        items = [r for r in items if _matches(r, field, values)]
    if "tags" in q:
        wanted = set(",".join(q.getall("tags")).split(","))
        items = [r for r in items if wanted <= set(r.get("tags", []))]
    if "tags-any" in q:
        anyof = set(",".join(q.getall("tags-any")).split(","))
        items = [r for r in items if anyof & set(r.get("tags", []))]
    sort_key = q.get("sort_key")
    if sort_key:
        items.sort(key=lambda r: (str(r.get(sort_key)), r["id"]), reverse=q.get("sort_dir", "asc") == "desc")
    if "limit" in q and not q["limit"].isdigit():
        return error(ctx, 400, f"Bad limit request: Limit must be an integer 0 or greater and not '{q['limit']}'.",
                     "BadRequest")
    limit = page_size(ctx, int_param(q.get("limit")))
    page, last, found = paginate(items, limit, q.get("marker"))
    if not found:
        page = []
    render = group_view if collection == "security-groups" else view
    body: Resource = {collection.replace("-", "_"): [render(ctx, r, fields) for r in page]}
    if last is not None:
        body[f"{collection.replace('-', '_')}_links"] = [
            {"rel": "next", "href": next_href(ctx, f"{ctx.base}/v2.0/{collection}", last, limit)}]
    return json_response(body)


def show(ctx: Ctx, collection: str, ident: str) -> web.Response:
    resource = table(ctx, collection).get(ident)
    if resource is None or not visible(ctx, resource):
        return _missing(ctx, collection, ident)
    render = group_view if collection == "security-groups" else view
    fields = ctx.query.getall("fields", []) or None
    return json_response({KINDS[collection][0]: render(ctx, resource, fields)})


async def create(ctx: Ctx, collection: str) -> web.Response:
    singular = KINDS[collection][0]
    doc = await ctx.json()
    if not isinstance(doc, dict):
        return error(ctx, 400, "Invalid request body.")
    bulk = f"{collection.replace('-', '_')}" in doc
    bodies: list[Any] = doc[collection.replace("-", "_")] if bulk else [doc.get(singular)]
    if not isinstance(bodies, list) or not all(isinstance(b, dict) for b in bodies):
        return error(ctx, 400, f"Resource body required: '{singular}'.")
    made: list[Resource] = []
    for body in bodies:
        project = (body.get("project_id") or body.get("tenant_id")) if ctx.is_admin else ctx.project_id
        project = project or ctx.project_id
        if not ctx.is_admin and any(k.startswith("provider:") or k == "router:external" for k in body):
            return error(ctx, 403, f"(rule:create_{singular} and rule:create_{singular}:provider:network_type) "
                                   "is disallowed by policy")
        over = check_quota(ctx, singular, project)
        if over is not None:
            return over
        result = await CREATORS[collection](ctx, body)
        if isinstance(result, web.Response):
            return result
        made.append(result)
    render = group_view if collection == "security-groups" else view
    if bulk:
        return json_response({collection.replace("-", "_"): [render(ctx, r) for r in made]}, 201)
    return json_response({singular: render(ctx, made[0])}, 201)


READ_ONLY = {"id", "tenant_id", "project_id", "created_at", "updated_at", "revision_number", "status", "subnets",
             "network_id", "cidr", "ip_version", "mac_address", "security_group_rules", "floating_ip_address",
             "floating_network_id", "security_group_id", "direction", "ethertype", "protocol"}


async def update(ctx: Ctx, collection: str, ident: str) -> web.Response:
    resource = table(ctx, collection).get(ident)
    if resource is None or not visible(ctx, resource):
        return _missing(ctx, collection, ident)
    singular = KINDS[collection][0]
    body = await ctx.body(singular)
    if not ctx.is_admin and resource.get("project_id") != ctx.project_id:
        return error(ctx, 403, f"rule:update_{singular} is disallowed by policy")
    for key, value in body.items():
        if key in READ_ONLY:
            return error(ctx, 400, f"Cannot update read-only attribute {key}")
        if key.startswith("provider:") and not ctx.is_admin:
            return error(ctx, 403, f"rule:update_{singular}:{key} is disallowed by policy")
        if collection == "routers" and key == "external_gateway_info":
            reason = None if (value or {}).get("network_id") else neutron_vpn.router_in_use(ctx.site, resource["id"])
            if reason is not None:
                return error(ctx, 409, reason, "RouterInUse")
            problem = set_gateway(ctx, resource, value or {})
            if problem is not None:
                return problem
            continue
        if collection == "subnets" and key == "dns_nameservers":
            problem = check_nameservers(ctx, value)
            if problem is not None:
                return problem
        if collection == "floatingips" and key == "port_id":
            port = ctx.site.neutron.ports.get(value) if value else None
            if value and port is None:
                return _missing(ctx, "ports", value)
            resource.update(port_id=value, fixed_ip_address=port["fixed_ips"][0]["ip_address"] if port else None,
                            status="ACTIVE" if port else "DOWN")
            continue
        resource[key] = value
    touch(resource)
    render = group_view if collection == "security-groups" else view
    return json_response({singular: render(ctx, resource)})


def delete(ctx: Ctx, collection: str, ident: str) -> web.Response:
    neutron = ctx.site.neutron
    resource = table(ctx, collection).get(ident)
    if resource is None or not visible(ctx, resource):
        return _missing(ctx, collection, ident)
    if not ctx.is_admin and resource.get("project_id") != ctx.project_id:
        return error(ctx, 403, f"rule:delete_{KINDS[collection][0]} is disallowed by policy")
    if collection == "networks":
        if any(p["network_id"] == ident and not p["device_owner"].startswith("network:dhcp")
               for p in neutron.ports.values()):
            return error(ctx, 409, f"Unable to complete operation on network {ident}. There are one or more ports "
                                   "still in use on the network.", "NetworkInUse")
        for sid in list(resource["subnets"]):
            neutron.subnets.pop(sid, None)
    elif collection == "subnets":
        if any(f["subnet_id"] == ident for p in neutron.ports.values() for f in p["fixed_ips"]):
            return error(ctx, 409, f"Unable to complete operation on subnet {ident}: One or more ports have an IP "
                                   "allocation from this subnet.", "SubnetInUse")
        network = neutron.networks.get(resource["network_id"])
        if network is not None and ident in network["subnets"]:
            network["subnets"].remove(ident)
    elif collection == "ports":
        release_port(ctx.site, resource)
        return web.Response(status=204)
    elif collection == "routers":
        mine = [p for p in neutron.ports.values() if p["device_id"] == ident]
        if any(p["device_owner"] == "network:router_interface" for p in mine):
            return error(ctx, 409, f"Router {ident} still has ports", "RouterInUse")
        reason = neutron_vpn.router_in_use(ctx.site, ident)
        if reason is not None:
            return error(ctx, 409, reason, "RouterInUse")
        for port in mine:
            release_port(ctx.site, port)
    elif collection == "security-groups":
        if resource["name"] == "default" and not ctx.is_admin:
            return error(ctx, 409, "Insufficient rights for removing default security group.",
                         "SecurityGroupCannotRemoveDefault")
        if any(ident in p["security_groups"] for p in neutron.ports.values()):
            return error(ctx, 409, f"Security Group {ident} in use.", "SecurityGroupInUse")
        for rid in [r for r, rule in neutron.security_group_rules.items() if rule["security_group_id"] == ident]:
            del neutron.security_group_rules[rid]
    del table(ctx, collection)[ident]
    return web.Response(status=204)


async def tags(ctx: Ctx, collection: str, ident: str, tag: str | None) -> web.Response:
    resource = table(ctx, collection).get(ident)
    if resource is None or not visible(ctx, resource):
        return _missing(ctx, collection, ident)
    current: list[str] = resource.setdefault("tags", [])
    if tag is None:
        if ctx.method == "PUT":
            resource["tags"] = [str(t) for t in (await ctx.json()).get("tags", [])]
            touch(resource)
        elif ctx.method == "DELETE":
            resource["tags"] = []
            return web.Response(status=204)
        return json_response({"tags": list(resource["tags"])})
    if ctx.method == "PUT":
        if tag not in current:
            current.append(tag)
            touch(resource)
        return web.Response(status=201)
    if tag not in current:
        return error(ctx, 404, f"Tag {tag} could not be found.", "TagNotFound")
    if ctx.method == "DELETE":
        current.remove(tag)
        touch(resource)
    return web.Response(status=204)


# --- creators --------------------------------------------------------------------------------------

async def create_network(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    neutron = ctx.site.neutron
    net = standard(ctx, body)
    net_type = body.get("provider:network_type") or "geneve"
    segment = body.get("provider:segmentation_id")
    if segment is None and net_type in ("geneve", "vxlan", "vlan"):
        segment = neutron.next_segment
        neutron.next_segment += 1
    net.update({"admin_state_up": body.get("admin_state_up", True), "status": "ACTIVE", "subnets": [],
                "shared": bool(body.get("shared", False)),
                "mtu": body.get("mtu", 1442 if net_type == "geneve" else 1500),
                "availability_zone_hints": body.get("availability_zone_hints", []), "availability_zones": [],
                "ipv4_address_scope": None, "ipv6_address_scope": None,
                "router:external": bool(body.get("router:external", False)), "is_default": False,
                "port_security_enabled": body.get("port_security_enabled", True), "l2_adjacency": True,
                "qos_policy_id": None, "dns_domain": "", "provider:network_type": net_type,
                "provider:physical_network": body.get("provider:physical_network"),
                "provider:segmentation_id": segment})
    neutron.networks[net["id"]] = net
    return net


async def create_port(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    network_id = str(body.get("network_id", ""))
    network = ctx.site.neutron.networks.get(network_id)
    if network is None or not visible(ctx, network):
        return _missing(ctx, "networks", network_id)
    project = (body.get("project_id") or body.get("tenant_id") or ctx.project_id) if ctx.is_admin else ctx.project_id
    made = allocate_port(ctx.site, project, network_id, device_id=body.get("device_id", ""),
                         device_owner=body.get("device_owner", ""), ctx=ctx, body=body)
    if isinstance(made, str):
        status, kind = (409, "IpAddressGenerationFailure") if "No more IP" in made else \
            (409, "IpAddressInUse") if "already allocated" in made else \
            (400, "InvalidIpForSubnet") if "not a valid IP" in made else (400, "InvalidInput")
        return error(ctx, status, made, kind)
    made["name"] = body.get("name", "")
    return made


async def create_security_group(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    project = (body.get("project_id") or body.get("tenant_id") or ctx.project_id) if ctx.is_admin else ctx.project_id
    if body.get("name") == "default":
        return error(ctx, 409, "Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
    default_security_group(ctx.site, project)
    return new_security_group(ctx.site, project, str(body.get("name", "")), str(body.get("description", "")),
                              default=False)


async def create_rule(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    neutron = ctx.site.neutron
    group = neutron.security_groups.get(str(body.get("security_group_id", "")))
    if group is None or not visible(ctx, group):
        return _missing(ctx, "security-groups", str(body.get("security_group_id")))
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        return error(ctx, 400, f"Invalid input for direction. Reason: {direction} is not in valid_values.",
                     "InvalidInput")
    protocol = body.get("protocol")
    prefix = body.get("remote_ip_prefix")
    if prefix is not None:
        try:
            ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return error(ctx, 400, f"Invalid input for remote_ip_prefix. Reason: '{prefix}' is not a valid IP "
                                   "subnet.", "InvalidInput")
    rule = new_rule(group, direction, body.get("ethertype", "IPv4"), remote_group=body.get("remote_group_id"),
                    protocol=str(protocol) if protocol is not None else None,
                    port_min=body.get("port_range_min"), port_max=body.get("port_range_max"),
                    remote_ip_prefix=body.get("remote_ip_prefix"), description=str(body.get("description") or ""))
    keys = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "normalized_cidr",
            "remote_group_id")
    for other in neutron.security_group_rules.values():
        if other["security_group_id"] == group["id"] and all(other[k] == rule[k] for k in keys):
            return error(ctx, 409, f"Security group rule already exists. Rule id is {other['id']}.",
                         "SecurityGroupRuleExists")
    # Real neutron gives the rule the requester's project (or the one asked), not the group's owner:
    # an admin adding a rule to another project's group makes an admin-owned rule.
    owner = str(body.get("project_id") or body.get("tenant_id") or ctx.project_id or group["project_id"])
    rule.update(project_id=owner, tenant_id=owner)
    neutron.security_group_rules[rule["id"]] = rule
    return rule


CREATORS: dict[str, Creator] = {
    "networks": create_network, "subnets": create_subnet, "subnetpools": create_subnetpool, "ports": create_port,
    "routers": create_router, "floatingips": create_floatingip, "security-groups": create_security_group,
    "security-group-rules": create_rule,
}


# --- quotas ----------------------------------------------------------------------------------------

async def quotas(ctx: Ctx, rest: list[str]) -> web.Response:
    neutron = ctx.site.neutron
    if not rest:
        if not ctx.is_admin:
            return error(ctx, 403, "rule:get_quota is disallowed by policy")
        return json_response({"quotas": [{**quota_limits(ctx.site, p), "project_id": p, "tenant_id": p}
                                         for p in neutron.quotas]})
    project = rest[0]
    if rest[0] == "tenant" or (project != ctx.project_id and not ctx.is_admin):
        if rest[0] == "tenant":
            return json_response({"tenant": {"tenant_id": ctx.project_id}})
        return error(ctx, 403, "rule:get_quota is disallowed by policy")
    if len(rest) == 2 and rest[1] == "details" and ctx.method == "GET":
        usage = used(ctx.site, project)
        return json_response({"quota": {k: {"limit": v, "used": usage.get(k, 0), "reserved": 0}
                                        for k, v in quota_limits(ctx.site, project).items()}})
    if len(rest) == 2 and rest[1] == "default" and ctx.method == "GET":
        return json_response({"quota": dict(QUOTA_DEFAULTS)})
    if len(rest) != 1:
        return error(ctx, 404, "The resource could not be found.")
    if ctx.method == "GET":
        return json_response({"quota": quota_limits(ctx.site, project)})
    if not ctx.is_admin:
        return error(ctx, 403, "rule:update_quota is disallowed by policy")
    if ctx.method == "DELETE":
        neutron.quotas.pop(project, None)
        return web.Response(status=204)
    if ctx.method == "PUT":
        body = await ctx.body("quota")
        changes = {}
        for key, value in body.items():
            if key in ("force", "check_limit"):
                continue
            if key not in QUOTA_DEFAULTS:
                return error(ctx, 400, f"Unrecognized attribute(s) '{key}'")
            try:
                changes[key] = int(value)
            except (TypeError, ValueError):
                return error(ctx, 400, f"Invalid input for {key}. Reason: '{value}' is not an integer.",
                             "InvalidInput")
        neutron.quotas.setdefault(project, {}).update(changes)
        return json_response({"quota": quota_limits(ctx.site, project)})
    return error(ctx, 405, "Method not allowed.")
