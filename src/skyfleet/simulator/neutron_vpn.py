"""Simulated Neutron VPNaaS (the ``vpnaas`` and ``vpn-endpoint-groups`` extensions): IKE policies,
IPsec policies, VPN services, endpoint groups and IPsec site connections under ``/v2.0/vpn/``.

Why it exists: Skyfleet meshes a routing domain's sites with site-to-site IPsec where a site's Neutron
offers VPNaaS. The real test bed's Neutron has no VPNaaS plugin, so this module is where those calls
meet real Neutron's shapes (neutron-lib api-ref and neutron-vpnaas): the defaults, the required
fields, 404/400/409 answers, a VPN service only on a router with an external gateway (its
``external_v4_ip``), the ``psk`` returned as Neutron returns it, and a connection's ``status``:
``PENDING_CREATE`` in the create answer, then ``ACTIVE`` when a connection of another simulated site
answers it (its VPN service's address is our ``peer_address``, ours is its, same pre-shared key),
else ``DOWN``. A site's ``neutron.vpnaas`` turned off hides the extension (404s, as a Neutron without
the plugin answers).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from .httpkit import Ctx, int_param, json_response, next_href, page_size, paginate
from .neutron_base import error, standard, touch, view, visible
from .state import Resource, Site

EXTENSIONS = ["vpnaas", "vpn-endpoint-groups", "vpn-endpoint-groups-ext"]
# collection -> (singular, NeutronState attribute, not-found type)
KINDS: dict[str, tuple[str, str, str]] = {
    "ikepolicies": ("ikepolicy", "ikepolicies", "IKEPolicyNotFound"),
    "ipsecpolicies": ("ipsecpolicy", "ipsecpolicies", "IPsecPolicyNotFound"),
    "vpnservices": ("vpnservice", "vpnservices", "VPNServiceNotFound"),
    "endpoint-groups": ("endpoint_group", "endpoint_groups", "VPNEndpointGroupNotFound"),
    "ipsec-site-connections": ("ipsec_site_connection", "ipsec_site_connections", "IPsecSiteConnectionNotFound"),
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
    singular, _attr, kind = KINDS[collection]
    return error(ctx, 404, f"{singular} {ident} could not be found", kind)


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
    if collection == "ipsec-site-connections" and not resource.get("_new"):
        out["status"] = connection_status(ctx.site, resource)
    if collection == "vpnservices" and not resource.get("_new"):
        out["status"] = "ACTIVE" if resource["admin_state_up"] else "DOWN"
    resource.pop("_new", None)
    return out


def _address(site: Site, connection: Resource) -> str | None:
    service = site.neutron.vpnservices.get(connection["vpnservice_id"])
    return service.get("external_v4_ip") if service else None


def connection_status(site: Site, conn: Resource) -> str:
    """ACTIVE when some simulated site holds the other end: its VPN service's address is our peer, its
    peer is our address, with the same key; DOWN otherwise."""
    if not conn["admin_state_up"] or site.fleet_sites is None:
        return "DOWN"
    mine = _address(site, conn)
    for other in site.fleet_sites.values():
        if other is site or other._neutron is None:
            continue
        for far in other.neutron.ipsec_site_connections.values():
            if far["admin_state_up"] and far["peer_address"] == mine and far["psk"] == conn["psk"] \
                    and _address(other, far) == conn["peer_address"]:
                return "ACTIVE"
    return "DOWN"


def _choices(ctx: Ctx, collection: str, body: dict[str, Any]) -> web.Response | None:
    for key, allowed in CHOICES.get(collection, {}).items():
        if key in body and body[key] not in allowed:
            return error(ctx, 400, f"Invalid input for {key}. Reason: '{body[key]}' is not in "
                                   f"{sorted(allowed)}.", "HTTPBadRequest")
    lifetime = body.get("lifetime")
    if lifetime is not None and (not isinstance(lifetime, dict) or lifetime.get("units", "seconds") != "seconds"
                                 or not isinstance(lifetime.get("value", 3600), int)
                                 or int(lifetime.get("value", 3600)) < 60):
        return error(ctx, 400, f"Invalid input for lifetime. Reason: '{lifetime}' is not a valid lifetime "
                               "(units 'seconds', value at least 60).", "HTTPBadRequest")
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
    if kind is None or not isinstance(endpoints, list) or not endpoints:
        return error(ctx, 400, "Endpoint group requires a type and a non-empty list of endpoints", "HTTPBadRequest")
    for endpoint in endpoints:
        if kind == "cidr":
            try:
                ipaddress.ip_network(str(endpoint))
            except ValueError:
                return error(ctx, 400, f"Invalid endpoint's CIDR '{endpoint}'", "InvalidEndpointInEndpointGroup")
        if kind == "subnet" and endpoint not in ctx.site.neutron.subnets:
            return error(ctx, 400, f"Endpoint '{endpoint}' is invalid for group type 'subnet': "
                                   "subnet not found", "InvalidEndpointInEndpointGroup")
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
    absent = [key for key in CONNECTION_REQUIRED if not body.get(key)]
    if absent:
        return error(ctx, 400, f"Request body missing or empty: {', '.join(absent)}", "HTTPBadRequest")
    try:
        ipaddress.ip_address(str(body["peer_address"]))
    except ValueError:
        return error(ctx, 400, f"Invalid input for peer_address. Reason: '{body['peer_address']}' is not a valid "
                               "IP address.", "HTTPBadRequest")
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
    mtu = body.get("mtu", 1500)
    if not isinstance(mtu, int) or mtu < 68:
        return error(ctx, 400, f"Invalid input for mtu. Reason: '{mtu}' is too small - must be at least '68'.",
                     "HTTPBadRequest")
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
            return error(ctx, 409, message, kind)
    del table(ctx.site, collection)[ident]
    return web.Response(status=204)


def router_in_use(site: Site, router_id: str) -> str | None:
    """The VPN service on the router (a router with one cannot be deleted), else None."""
    return next((s["id"] for s in site.neutron.vpnservices.values() if s["router_id"] == router_id), None)
