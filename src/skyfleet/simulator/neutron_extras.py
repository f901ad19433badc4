"""Simulated Neutron resources with addressing logic: subnets (pools, gateway), subnet pools (prefix
allocation), routers (gateway and interfaces) and floating IPs.

Why it exists: these creators carry neutron's IPAM rules, which Skyfleet's IPAM must agree with;
the generic CRUD in neutron.py stays small by delegating them here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from . import neutron_vpn
from .httpkit import Ctx, json_response
from .neutron_base import allocate_ip, allocate_port, error, release_port, standard, touch, visible
from .state import Resource


def _bad(ctx: Ctx, message: str) -> web.Response:
    return error(ctx, 400, f"Invalid input for operation: {message}.", "InvalidInput")


def _pick_prefix(ctx: Ctx, pool: Resource, prefixlen: int) -> str | None:
    taken = [ipaddress.ip_network(s["cidr"]) for s in ctx.site.neutron.subnets.values()
             if s.get("subnetpool_id") == pool["id"]]
    for prefix in pool["prefixes"]:
        for candidate in ipaddress.ip_network(prefix).subnets(new_prefix=prefixlen):
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate)
    return None


async def create_subnet(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    neutron = ctx.site.neutron
    network = neutron.networks.get(str(body.get("network_id", "")))
    if network is None or not visible(ctx, network):
        return error(ctx, 404, f"Network {body.get('network_id')} could not be found.", "NetworkNotFound")
    version = int(body.get("ip_version", 4))
    cidr = body.get("cidr")
    pool_id = body.get("subnetpool_id")
    if cidr is None and pool_id:
        pool = neutron.subnetpools.get(pool_id)
        if pool is None:
            return error(ctx, 404, f"Subnet pool {pool_id} could not be found.", "SubnetPoolNotFound")
        cidr = _pick_prefix(ctx, pool, int(body.get("prefixlen") or pool["default_prefixlen"]))
        if cidr is None:
            return error(ctx, 409, f"Insufficient prefix space to allocate subnet size /{body.get('prefixlen')}.",
                         "SubnetAllocationError")
    if cidr is None:
        return _bad(ctx, "a cidr must be specified in the absence of a subnet pool")
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return _bad(ctx, f"'{cidr}' isn't a recognized IP subnet cidr, '{ipaddress.ip_network(cidr, strict=False)}' "
                         "is recommended" if _loose(cidr) else f"'{cidr}' is not a valid IP subnet")
    if net.version != version:
        return _bad(ctx, f"Cidr {cidr} does not match ip_version {version}")
    for other in neutron.subnets.values():
        if other["network_id"] == network["id"] and ipaddress.ip_network(other["cidr"]).overlaps(net):
            return _bad(ctx, f"Requested subnet with cidr: {cidr} for network: {network['id']} overlaps with "
                             f"another subnet")
    problem = check_nameservers(ctx, body.get("dns_nameservers", []))
    if problem is not None:
        return problem
    hosts = net.num_addresses - (2 if version == 4 else 1)
    if hosts < 1:
        return _bad(ctx, f"Subnet {cidr} is too small")
    first = net.network_address + 1
    last = net.broadcast_address - (1 if version == 4 else 0)
    gateway = body.get("gateway_ip", str(first))
    pools = body.get("allocation_pools")
    if not pools:
        start = int(first) + (1 if gateway == str(first) else 0)
        pools = [{"start": str(ipaddress.ip_address(start)), "end": str(last)}] if start <= int(last) else []
    subnet = standard(ctx, body, network["project_id"] if not ctx.is_admin else None)
    subnet.update({"network_id": network["id"], "ip_version": version, "cidr": str(net), "gateway_ip": gateway,
                   "allocation_pools": pools, "enable_dhcp": body.get("enable_dhcp", True),
                   "dns_nameservers": body.get("dns_nameservers", []), "host_routes": body.get("host_routes", []),
                   "ipv6_ra_mode": body.get("ipv6_ra_mode"), "ipv6_address_mode": body.get("ipv6_address_mode"),
                   "subnetpool_id": pool_id, "service_types": [], "segment_id": None, "dns_publish_fixed_ip": False,
                   "_allocated": {gateway} if gateway else set()})
    neutron.subnets[subnet["id"]] = subnet
    network["subnets"].append(subnet["id"])
    touch(network)
    return subnet


def check_nameservers(ctx: Ctx, value: Any) -> web.Response | None:
    """Neutron's rule for ``dns_nameservers``: a list of distinct IP addresses."""
    if not isinstance(value, list):
        return _bad(ctx, f"'{value}' is not a list")
    for item in value:
        try:
            ipaddress.ip_address(str(item))
        except ValueError:
            return _bad(ctx, f"'{item}' is not a valid nameserver. '{item}' is not a valid IP address")
    if len(set(value)) != len(value):
        return _bad(ctx, f"Duplicate nameserver '{next(v for v in value if value.count(v) > 1)}'")
    return None


def _loose(cidr: str) -> bool:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return True


async def create_subnetpool(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    prefixes = body.get("prefixes") or []
    try:
        nets = [ipaddress.ip_network(p) for p in prefixes]
    except ValueError as exc:
        return _bad(ctx, str(exc))
    if not nets:
        return _bad(ctx, "prefixes must be a non-empty list")
    pool = standard(ctx, body)
    version = nets[0].version
    pool.update({"prefixes": [str(n) for n in nets], "ip_version": version,
                 "default_prefixlen": int(body.get("default_prefixlen") or (26 if version == 4 else 64)),
                 "min_prefixlen": int(body.get("min_prefixlen") or (8 if version == 4 else 64)),
                 "max_prefixlen": int(body.get("max_prefixlen") or (32 if version == 4 else 128)),
                 "shared": bool(body.get("shared", False)), "is_default": bool(body.get("is_default", False)),
                 "default_quota": body.get("default_quota"), "address_scope_id": body.get("address_scope_id")})
    ctx.site.neutron.subnetpools[pool["id"]] = pool
    return pool


async def create_router(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    router = standard(ctx, body)
    router.update({"admin_state_up": body.get("admin_state_up", True), "status": "ACTIVE",
                   "external_gateway_info": None, "routes": [], "distributed": False, "ha": False,
                   "availability_zone_hints": [], "availability_zones": [], "flavor_id": None,
                   "enable_ndp_proxy": None})
    ctx.site.neutron.routers[router["id"]] = router
    gateway = body.get("external_gateway_info")
    if gateway:
        problem = set_gateway(ctx, router, gateway)
        if problem is not None:
            del ctx.site.neutron.routers[router["id"]]
            return problem
    return router


def set_gateway(ctx: Ctx, router: Resource, gateway: dict[str, Any]) -> web.Response | None:
    """Set (or, with an empty ``gateway``, clear) the router's external gateway, as Neutron's PUT does:
    the old gateway port is released, a new one takes an address on the external network."""
    neutron = ctx.site.neutron
    if not gateway.get("network_id"):
        for old in [p for p in neutron.ports.values()
                    if p["device_id"] == router["id"] and p["device_owner"] == "network:router_gateway"]:
            release_port(ctx.site, old)
        router["external_gateway_info"] = None
        return None
    current = router.get("external_gateway_info") or {}
    if current.get("network_id") == gateway["network_id"]:
        return None
    network = neutron.networks.get(str(gateway.get("network_id", "")))
    if network is None:
        return error(ctx, 404, f"Network {gateway.get('network_id')} could not be found.", "NetworkNotFound")
    if not network["router:external"]:
        return error(ctx, 400, f"Bad router request: Network {network['id']} is not an external network.",
                     "BadRequest")
    if current:
        set_gateway(ctx, router, {})
    port = allocate_port(ctx.site, "", network["id"], device_id=router["id"], device_owner="network:router_gateway")
    if isinstance(port, str):
        return error(ctx, 409, port, "IpAddressGenerationFailure")
    router["external_gateway_info"] = {"network_id": network["id"], "enable_snat": gateway.get("enable_snat", True),
                                       "external_fixed_ips": list(port["fixed_ips"])}
    return None


async def router_interface(ctx: Ctx, router: Resource, add: bool) -> web.Response:
    neutron = ctx.site.neutron
    body = await ctx.json()
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if add:
        if subnet_id:
            subnet = neutron.subnets.get(subnet_id)
            if subnet is None or not visible(ctx, subnet):
                return error(ctx, 404, f"Subnet {subnet_id} could not be found.", "SubnetNotFound")
            if any(p["device_id"] == router["id"] and any(f["subnet_id"] == subnet_id for f in p["fixed_ips"])
                   for p in neutron.ports.values()):
                return error(ctx, 400, f"Bad router request: Router already has a port on subnet {subnet_id}.",
                             "BadRequest")
            subnet["_allocated"].discard(subnet["gateway_ip"])
            made = allocate_port(ctx.site, router["project_id"], subnet["network_id"], device_id=router["id"],
                                 device_owner="network:router_interface",
                                 body={"fixed_ips": [{"subnet_id": subnet_id, "ip_address": subnet["gateway_ip"]}]})
            if isinstance(made, str):
                subnet["_allocated"].add(subnet["gateway_ip"])
                return error(ctx, 409, made, "IpAddressInUse")
            port = made
        else:
            found = neutron.ports.get(port_id or "")
            if found is None:
                return error(ctx, 404, f"Port {port_id} could not be found.", "PortNotFound")
            found.update(device_id=router["id"], device_owner="network:router_interface", status="ACTIVE")
            port = found
    else:
        found_port = next((p for p in neutron.ports.values() if p["device_id"] == router["id"]
                           and (p["id"] == port_id or any(f["subnet_id"] == subnet_id for f in p["fixed_ips"]))),
                          None)
        if found_port is None:
            return error(ctx, 404, f"Router {router['id']} does not have an interface with id "
                                   f"{port_id or subnet_id}", "RouterInterfaceNotFoundForSubnet")
        subnets = [subnet_id] if subnet_id else [f["subnet_id"] for f in found_port["fixed_ips"]]
        reason = next(filter(None, (neutron_vpn.subnet_in_use(ctx.site, router["id"], s) for s in subnets)), None)
        if reason is not None:
            return error(ctx, 409, reason, "SubnetInUseByIPsecSiteConnection")
        port = found_port
    info = {"id": router["id"], "tenant_id": router["project_id"], "project_id": router["project_id"],
            "port_id": port["id"], "network_id": port["network_id"],
            "subnet_id": port["fixed_ips"][0]["subnet_id"] if port["fixed_ips"] else None,
            "subnet_ids": [f["subnet_id"] for f in port["fixed_ips"]]}
    if not add:
        release_port(ctx.site, port)
    touch(router)
    return json_response(info)


async def create_floatingip(ctx: Ctx, body: dict[str, Any]) -> Resource | web.Response:
    neutron = ctx.site.neutron
    network = neutron.networks.get(str(body.get("floating_network_id", "")))
    if network is None:
        return error(ctx, 404, f"Network {body.get('floating_network_id')} could not be found.", "NetworkNotFound")
    if not network["router:external"]:
        return error(ctx, 400, f"Bad floatingip request: Network {network['id']} is not a valid external network.",
                     "BadRequest")
    address = None
    for sid in network["subnets"]:
        address = allocate_ip(neutron.subnets[sid], body.get("floating_ip_address"))
        if address:
            break
    if address is None:
        return error(ctx, 409, f"No more IP addresses available on network {network['id']}.",
                     "IpAddressGenerationFailure")
    fip = standard(ctx, body)
    fip.pop("name")
    port = neutron.ports.get(body.get("port_id") or "")
    fip.update({"floating_ip_address": address, "floating_network_id": network["id"], "router_id": None,
                "port_id": port["id"] if port else None,
                "fixed_ip_address": port["fixed_ips"][0]["ip_address"] if port and port["fixed_ips"] else None,
                "status": "ACTIVE" if port else "DOWN", "port_details": None, "qos_policy_id": None,
                "dns_domain": "", "dns_name": "", "port_forwardings": []})
    neutron.floatingips[fip["id"]] = fip
    return fip
