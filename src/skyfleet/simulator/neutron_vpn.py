"""Simulated Neutron VPNaaS (the ``vpnaas`` and ``vpn-endpoint-groups`` extensions): IKE policies,
IPsec policies, VPN services, endpoint groups and IPsec site connections under ``/v2.0/vpn/``.

Why it exists: Skyfleet meshes a routing domain's sites with site-to-site IPsec where a site's Neutron
offers VPNaaS. Its shapes and errors follow what the real test bed's neutron-vpnaas 29.0.0 answers:
the defaults, the required fields, 404/400/409 answers, a VPN service only on a router with an external gateway (its
``external_v4_ip``), the ``psk`` returned as Neutron returns it, and a connection's ``status``:
``PENDING_CREATE`` in the create answer, then ``ACTIVE`` when a connection of another simulated site
answers it (its VPN service's address is our ``peer_address``, ours is its, same pre-shared key),
else ``DOWN``. A site whose ``neutron.vpn_agent`` is off keeps every service and connection
``PENDING_CREATE`` and refuses to update them (``400 VPNStateInvalidToUpdate``), as the real test
bed's Neutron (VPNaaS plugin, no agent) does. A site's ``neutron.vpnaas`` turned off hides the
extension (404s, as a Neutron without the plugin answers).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from .httpkit import Ctx, int_param, json_response, next_href, page_size, paginate
from .neutron_base import error, standard, touch, view, visible
from .state import Resource, Site

EXTENSIONS = ["vpnaas", "vpn-endpoint-groups", "vpn-endpoint-groups-ext"]
# collection -> (singular, NeutronState attribute, not-found type, not-found message)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "ikepolicies": ("ikepolicy", "ikepolicies", "IKEPolicyNotFound", "IKEPolicy {} could not be found"),
    "ipsecpolicies": ("ipsecpolicy", "ipsecpolicies", "IPsecPolicyNotFound", "IPsecPolicy {} could not be found"),
    "vpnservices": ("vpnservice", "vpnservices", "VPNServiceNotFound", "VPNService {} could not be found"),
    "endpoint-groups": ("endpoint_group", "endpoint_groups", "VPNEndpointGroupNotFound",
                        "Endpoint group {} could not be found"),
    "ipsec-site-connections": ("ipsec_site_connection", "ipsec_site_connections", "IPsecSiteConnectionNotFound",
                               "ipsec_site_connection {} not found"),
}
AUTH = {"sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac"}
ENCRYPTION = {"3des", "aes-128", "aes-192", "aes-256", "aes-128-ccm-8", "aes-192-ccm-8", "aes-256-ccm-8",
              "aes-128-ccm-12", "aes-192-ccm-12", "aes-256-ccm-12", "aes-128-ccm-16", "aes-192-ccm-16",
              "aes-256-ccm-16", "aes-128-gcm-8", "aes-192-gcm-8", "aes-256-gcm-8", "aes-128-gcm-12",
              "aes-192-gcm-12", "aes-256-gcm-12", "aes-128-gcm-16", "aes-192-gcm-16", "aes-256-gcm-16"}
PFS = {"group2", "group5", "group14", "group15", "group16", "group17", "group18", "group19", "group20",
       "group21", "group22", "group23", "group24", "group25", "group26", "group27", "group28", "group29",
       "group30", "group31"}
CHOICES: dict[str, dict[str, set[str]]] = {
    "ikepolicies": {"auth_algorithm": AUTH, "encryption_algorithm": ENCRYPTION, "pfs": PFS,
                    "phase1_negotiation_mode": {"main", "aggressive"}, "ike_version": {"v1", "v2"}},
    "ipsecpolicies": {"auth_algorithm": AUTH, "encryption_algorithm": ENCRYPTION, "pfs": PFS,
                      "transform_protocol": {"esp", "ah", "ah-esp"}, "encapsulation_mode": {"tunnel", "transport"}},
    "endpoint-groups": {"type": {"subnet", "cidr", "network", "vlan", "router"}},
}
LIFETIME = {"units": "seconds", "value": 3600}
DEFAULTS: dict[str, dict[str, Any]] = {
    "ikepolicies": {"auth_algorithm": "sha1", "encryption_algorithm": "aes-128", "pfs": "group5",
                    "phase1_negotiation_mode": "main", "ike_version": "v1"},
    "ipsecpolicies": {"auth_algorithm": "sha1", "encryption_algorithm": "aes-128", "pfs": "group5",
                      "transform_protocol": "esp", "encapsulation_mode": "tunnel"},
}
CONNECTION_REQUIRED = ("peer_address", "peer_id", "psk", "vpnservice_id", "ikepolicy_id", "ipsecpolicy_id")


def table(site: Site, collection: str) -> dict[str, Resource]:
    result: dict[str, Resource] = getattr(site.neutron, KINDS[collection][1])
    return result


def _missing(ctx: Ctx, collection: str, ident: str) -> web.Response:
    _singular, _attr, kind, message = KINDS[collection]
    return error(ctx, 404, message.format(ident), kind)


async def handle(ctx: Ctx, parts: list[str]) -> web.StreamResponse:
    """``/v2.0/vpn/<collection>[/<id>]``; 404 everywhere when the site has no VPNaaS."""
    if not ctx.site.neutron.vpnaas or not parts or parts[0] not in KINDS or len(parts) > 2:
        return error(ctx, 404, "The resource could not be found.")
    collection, method = parts[0], ctx.method
    if len(parts) == 1:
        if method == "GET":
            return listing(ctx, collection)
        if method == "POST":
            return await create(ctx, collection)
        return error(ctx, 405, "The resource could not be found.")
    found = table(ctx.site, collection).get(parts[1])
    if found is None or not visible(ctx, found):
        return _missing(ctx, collection, parts[1])
    if method == "GET":
        return json_response({KINDS[collection][0]: render(ctx, collection, found)})
    if method == "PUT":
        return await update(ctx, collection, found)
    if method == "DELETE":
        return delete(ctx, collection, found)
    return error(ctx, 405, "The resource could not be found.")


def listing(ctx: Ctx, collection: str) -> web.Response:
    q = ctx.query
    items = [r for r in table(ctx.site, collection).values() if visible(ctx, r)]
    for key in set(q.keys()) - {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}:
        field = "project_id" if key == "tenant_id" else key
        items = [r for r in items if str(render(ctx, collection, r).get(field)) in q.getall(key)]
    limit = page_size(ctx, int_param(q.get("limit")))
    page, last, found = paginate(items, limit, q.get("marker"))
    key = collection.replace("-", "_")
    body: Resource = {key: [render(ctx, collection, r) for r in (page if found else [])]}
    if last is not None:
        body[f"{key}_links"] = [{"rel": "next", "href": next_href(ctx, f"{ctx.base}/v2.0/vpn/{collection}", last,
                                                                  limit)}]
    return json_response(body)


def render(ctx: Ctx, collection: str, resource: Resource) -> Resource:
    out = view(ctx, resource)
    out.pop("tags", None)
    if collection in ("ipsec-site-connections", "vpnservices"):
        out["status"] = status(ctx.site, collection, resource)
    resource.pop("_new", None)
    return out


def _address(site: Site, connection: Resource) -> str | None:
    """The connection's own end: its VPN service's address of the peer address's IP version."""
    service = site.neutron.vpnservices.get(connection["vpnservice_id"])
    version = ipaddress.ip_address(connection["peer_address"]).version
    return service.get(f"external_v{version}_ip") if service else None


def status(site: Site, collection: str, resource: Resource) -> str:
    """A VPN service's or connection's status: ``PENDING_CREATE`` until an agent took it up (in the
    create answer; for ever on a site without a VPN agent, as on the real test bed), then the
    agent's word."""
    if resource.get("_new") or not site.neutron.vpn_agent:
        return "PENDING_CREATE"
    if collection == "vpnservices":
        return "ACTIVE" if resource["admin_state_up"] else "DOWN"
    return connection_status(site, resource)


def connection_status(site: Site, conn: Resource) -> str:
    """ACTIVE when some simulated site holds the other end: its VPN service's address is our peer, its
    peer is our address, with the same key; DOWN otherwise."""
    if not conn["admin_state_up"] or site.fleet_sites is None:
        return "DOWN"
    mine = _address(site, conn)
    for other in site.fleet_sites.values():
        if other is site or other._neutron is None or not other.neutron.vpn_agent:
            continue  # (a far end no agent serves builds no tunnel)
        for far in other.neutron.ipsec_site_connections.values():
            if far["admin_state_up"] and far["peer_address"] == mine and far["psk"] == conn["psk"] \
                    and _address(other, far) == conn["peer_address"]:
                return "ACTIVE"
    return "DOWN"


def _choices(ctx: Ctx, collection: str, body: dict[str, Any]) -> web.Response | None:
    for key, allowed in CHOICES.get(collection, {}).items():
        if key in body and body[key] not in allowed:
            return error(ctx, 400, f"Invalid input for {key}. Reason: {body[key]} is not in valid_values.",
                         "HTTPBadRequest")
    lifetime = body.get("lifetime")
    if lifetime is not None and (not isinstance(lifetime, dict) or lifetime.get("units", "seconds") != "seconds"
                                 or not isinstance(lifetime.get("value", 3600), int)):
        return error(ctx, 400, f"Invalid input for lifetime. Reason: '{lifetime}' is not a valid lifetime.",
                     "HTTPBadRequest")
    if lifetime is not None and int(lifetime.get("value", 3600)) < 60:
        return error(ctx, 400, f"Invalid input for lifetime. Reason: '{lifetime['value']}' is too small - must be "
                               "at least '60'.", "HTTPBadRequest")
    return None


def _unknown_keys(ctx: Ctx, body: dict[str, Any], allowed: set[str]) -> web.Response | None:
    extra = sorted(set(body) - allowed - {"name", "description", "project_id", "tenant_id"})
    if extra:
        return error(ctx, 400, f"Unrecognized attribute(s) '{', '.join(extra)}'", "HTTPBadRequest")
    return None


async def create(ctx: Ctx, collection: str) -> web.Response:
    singular = KINDS[collection][0]
    body = await ctx.body(singular)
    maker = {"ikepolicies": _policy, "ipsecpolicies": _policy, "vpnservices": _service,
             "endpoint-groups": _endpoint_group, "ipsec-site-connections": _connection}[collection]
    made = maker(ctx, collection, body)
    if isinstance(made, web.Response):
        return made
    made["_new"] = True
    table(ctx.site, collection)[made["id"]] = made
    return json_response({singular: render(ctx, collection, made)}, 201)


def _policy(ctx: Ctx, collection: str, body: dict[str, Any]) -> Resource | web.Response:
    allowed = set(DEFAULTS[collection]) | {"lifetime"}
    problem = _unknown_keys(ctx, body, allowed) or _choices(ctx, collection, body)
    if problem is not None:
        return problem
    made = standard(ctx, body)
    made.update({**DEFAULTS[collection], **{k: body[k] for k in DEFAULTS[collection] if k in body},
                 "lifetime": {**LIFETIME, **(body.get("lifetime") or {})}})
    return made


def _service(ctx: Ctx, _collection: str, body: dict[str, Any]) -> Resource | web.Response:
    problem = _unknown_keys(ctx, body, {"router_id", "subnet_id", "admin_state_up", "flavor_id"})
    if problem is not None:
        return problem
    router = ctx.site.neutron.routers.get(str(body.get("router_id") or ""))
    if router is None or not visible(ctx, router):
        return error(ctx, 404, f"Router {body.get('router_id')} could not be found", "RouterNotFound")
    gateway = router.get("external_gateway_info") or {}
    if not gateway.get("external_fixed_ips"):
        return error(ctx, 400, f"Router {router['id']} has no external network gateway set", "RouterIsNotExternal")
    subnet_id = body.get("subnet_id")
    if subnet_id is not None and subnet_id not in ctx.site.neutron.subnets:
        return error(ctx, 404, f"Subnet {subnet_id} could not be found.", "SubnetNotFound")
    ips = [ip["ip_address"] for ip in gateway["external_fixed_ips"]]
    made = standard(ctx, body)
    made.update(router_id=router["id"], subnet_id=subnet_id, admin_state_up=bool(body.get("admin_state_up", True)),
                flavor_id=body.get("flavor_id"), status="PENDING_CREATE",
                external_v4_ip=next((ip for ip in ips if ":" not in ip), None),
                external_v6_ip=next((ip for ip in ips if ":" in ip), None))
    return made


def _endpoint_group(ctx: Ctx, collection: str, body: dict[str, Any]) -> Resource | web.Response:
    problem = _unknown_keys(ctx, body, {"type", "endpoints"}) or _choices(ctx, collection, body)
    if problem is not None:
        return problem
    kind, endpoints = body.get("type"), body.get("endpoints")
    if kind is None or not isinstance(endpoints, list):
        return error(ctx, 400, "Failed to parse request. Required attribute 'type' or 'endpoints' not specified",
                     "HTTPBadRequest")
    if not endpoints:
        return error(ctx, 400, "No endpoints specified for endpoint group", "MissingEndpointForEndpointGroup")
    for endpoint in endpoints:
        if kind == "cidr":
            try:
                ipaddress.ip_network(str(endpoint))
            except ValueError:
                return error(ctx, 400, f"Endpoint '{endpoint}' is invalid for group type 'cidr': Invalid CIDR",
                             "InvalidEndpointInEndpointGroup")
        if kind == "subnet" and endpoint not in ctx.site.neutron.subnets:
            return error(ctx, 400, f"Subnet {endpoint} in endpoint group does not exist",
                         "NonExistingSubnetInEndpointGroup")
    made = standard(ctx, body)
    made.update(type=kind, endpoints=list(endpoints))
    return made


def _refs(ctx: Ctx, body: dict[str, Any]) -> web.Response | None:
    for key, collection in (("vpnservice_id", "vpnservices"), ("ikepolicy_id", "ikepolicies"),
                            ("ipsecpolicy_id", "ipsecpolicies"), ("local_ep_group_id", "endpoint-groups"),
                            ("peer_ep_group_id", "endpoint-groups")):
        ident = body.get(key)
        if ident is not None and ident not in table(ctx.site, collection):
            return _missing(ctx, collection, str(ident))
    return None


def _connection(ctx: Ctx, _collection: str, body: dict[str, Any]) -> Resource | web.Response:
    allowed = {*CONNECTION_REQUIRED, "local_id", "peer_cidrs", "local_ep_group_id", "peer_ep_group_id", "mtu",
               "initiator", "dpd", "admin_state_up"}
    problem = _unknown_keys(ctx, body, allowed)
    if problem is not None:
        return problem
    absent = [key for key in CONNECTION_REQUIRED if key not in body]
    if absent:
        return error(ctx, 400, f"Failed to parse request. Required attribute '{absent[0]}' not specified",
                     "HTTPBadRequest")
    try:
        peer = ipaddress.ip_address(str(body["peer_address"]))
    except ValueError:  # Neutron tries DNS, then gives up
        return error(ctx, 400, f"Peer address {body['peer_address']} cannot be resolved", "VPNPeerAddressNotResolved")
    problem = _refs(ctx, body)
    if problem is not None:
        return problem
    neutron = ctx.site.neutron
    groups = (str(body.get("local_ep_group_id") or ""), str(body.get("peer_ep_group_id") or ""))
    service = neutron.vpnservices[body["vpnservice_id"]]
    if any(groups) and not all(groups):
        return error(ctx, 400, "Missing endpoint group: both local and peer endpoint groups are required",
                     "MissingRequiredEndpointGroup")
    if all(groups) and (body.get("peer_cidrs") or service.get("subnet_id")):
        return error(ctx, 400, "Cannot mix endpoint groups with peer CIDRs or a VPN service with a subnet",
                     "PeerCidrsInvalid")
    if all(groups) and (neutron.endpoint_groups[groups[0]]["type"] != "subnet"
                        or neutron.endpoint_groups[groups[1]]["type"] != "cidr"):
        return error(ctx, 400, "The local endpoint group must be of type 'subnet' and the peer one of type "
                               "'cidr'", "WrongEndpointGroupType")
    if not all(groups) and not body.get("peer_cidrs"):
        return error(ctx, 400, "Missing peer CIDRs or endpoint groups", "MissingPeerCidrs")
    if not service.get(f"external_v{peer.version}_ip"):
        return error(ctx, 400, f"Router's {service['router_id']} external network has no IPv{peer.version} subnet",
                     "ExternalNetworkHasNoSubnet")
    mtu = body.get("mtu", 1500)
    if not isinstance(mtu, int) or mtu < (68 if peer.version == 4 else 1280):
        return error(ctx, 400, f"ipsec_site_connection MTU {mtu} is too small for ipv{peer.version}",
                     "IPsecSiteConnectionMtuError")
    made = standard(ctx, body)
    made.update({key: body[key] for key in CONNECTION_REQUIRED})
    made.update(local_id=body.get("local_id", ""), peer_cidrs=list(body.get("peer_cidrs") or []),
                local_ep_group_id=groups[0] or None, peer_ep_group_id=groups[1] or None, route_mode="static", mtu=mtu,
                auth_mode="psk", initiator=body.get("initiator", "bi-directional"),
                dpd={"action": "hold", "interval": 30, "timeout": 120, **(body.get("dpd") or {})},
                admin_state_up=bool(body.get("admin_state_up", True)), status="PENDING_CREATE")
    return made


async def update(ctx: Ctx, collection: str, resource: Resource) -> web.Response:
    singular = KINDS[collection][0]
    body = await ctx.body(singular)
    if not ctx.is_admin and resource.get("project_id") != ctx.project_id:
        return error(ctx, 403, f"rule:update_{singular} is disallowed by policy")
    writable = {"ikepolicies": {*DEFAULTS["ikepolicies"], "lifetime"},
                "ipsecpolicies": {*DEFAULTS["ipsecpolicies"], "lifetime"},
                "vpnservices": {"admin_state_up"}, "endpoint-groups": set(),
                "ipsec-site-connections": {"psk", "peer_address", "peer_id", "mtu", "dpd", "admin_state_up",
                                           "initiator"}}[collection]
    problem = _unknown_keys(ctx, body, writable) or _choices(ctx, collection, body)
    if problem is not None:
        return problem
    state = status(ctx.site, collection, resource) if collection in ("ipsec-site-connections", "vpnservices") else ""
    if state.startswith("PENDING_"):  # Neutron waits for the agent's word before it takes a change
        return error(ctx, 400, f"Invalid state {state} of vpnaas resource {resource['id']} for updating",
                     "VPNStateInvalidToUpdate")
    resource.update(body)
    touch(resource)
    return json_response({singular: render(ctx, collection, resource)})


def delete(ctx: Ctx, collection: str, resource: Resource) -> web.Response:
    if not ctx.is_admin and resource.get("project_id") != ctx.project_id:
        return error(ctx, 403, f"rule:delete_{KINDS[collection][0]} is disallowed by policy")
    neutron, ident = ctx.site.neutron, resource["id"]
    users = {"ikepolicies": ("ikepolicy_id", "IKEPolicyInUse", f"IKEPolicy {ident} is in use by existing "
                             "IPsecSiteConnection and can't be updated or deleted"),
             "ipsecpolicies": ("ipsecpolicy_id", "IPsecPolicyInUse", f"IPsecPolicy {ident} is in use by existing "
                               "IPsecSiteConnection and can't be updated or deleted"),
             "vpnservices": ("vpnservice_id", "VPNServiceInUse", f"VPNService {ident} is still in use"),
             "endpoint-groups": ("", "EndpointGroupInUse", f"Endpoint group {ident} is in use and cannot be "
                                 "deleted")}
    if collection in users:
        key, kind, message = users[collection]
        keys = (key,) if key else ("local_ep_group_id", "peer_ep_group_id")
        if any(c.get(k) == ident for c in neutron.ipsec_site_connections.values() for k in keys):
            return error(ctx, 400 if collection == "endpoint-groups" else 409, message, kind)
    del table(ctx.site, collection)[ident]
    return web.Response(status=204)


def router_in_use(site: Site, router_id: str) -> str | None:
    """Why the router's gateway cannot go (deleting the router, clearing its gateway): the VPN
    services on it, as Neutron's ``RouterInUse`` reason; else None."""
    found = [s["id"] for s in site.neutron.vpnservices.values() if s["router_id"] == router_id]
    if not found:
        return None
    return f"Router {router_id} is currently used by VPN service{'s' if len(found) > 1 else ''} ({','.join(found)})"


def subnet_in_use(site: Site, router_id: str, subnet_id: str) -> str | None:
    """Why the router's interface on the subnet cannot go: a connection whose local endpoint group
    names the subnet (Neutron's ``SubnetInUseByIPsecSiteConnection``); else None."""
    neutron = site.neutron
    for conn in neutron.ipsec_site_connections.values():
        service = neutron.vpnservices.get(conn["vpnservice_id"]) or {}
        group = neutron.endpoint_groups.get(str(conn.get("local_ep_group_id"))) or {}
        if service.get("router_id") == router_id and subnet_id in (group.get("endpoints") or []):
            return f"Subnet {subnet_id} is used by ipsec site connection {conn['id']}"
    return None
