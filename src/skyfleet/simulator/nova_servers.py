"""Simulated Nova servers: create (BUILD -> ACTIVE after the site's boot delay), get, list with
filters and changes-since (deleted servers show as DELETED), update, delete, actions, metadata, tags.

Why it exists: servers are the heart of what Skyfleet watches on each site; this module answers
openstacksdk's server calls with nova's shapes, quotas and tenant scoping.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from . import neutron_base, nova_logs
from .httpkit import Ctx, Router, empty, int_param, json_response, next_href, page_size, paginate
from .nova_base import check_quota, error, flavor_link, not_found, visible_flavor
from .nova_flavors import new_flavor
from .state import NovaState, Resource, Site, iso, parse_iso

router = Router()
POWER = {"ACTIVE": 1, "BUILD": 0, "SHUTOFF": 4, "ERROR": 0, "DELETED": 0, "PAUSED": 3, "SUSPENDED": 4}


def tick(server: Resource) -> Resource:
    """Servers become ACTIVE lazily once their boot delay has passed (no timers for 10,000 sites)."""
    if server["status"] == "BUILD" and time.time() >= server["_active_at"]:
        now = max(server["_active_at"], server["_created"])
        server.update(status="ACTIVE", _vm_state="active", _task_state=None, _launched=now, _updated=now)
    return server


def _links(ctx: Ctx, sid: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{ctx.base}/v2.1/servers/{sid}"},
            {"rel": "bookmark", "href": f"{ctx.base}/servers/{sid}"}]


def addresses(ctx: Ctx, server_id: str) -> dict[str, list[Resource]]:
    neutron = ctx.site.neutron if ctx.site._neutron is not None else None
    result: dict[str, list[Resource]] = {}
    if neutron is None:
        return result
    for port in neutron.ports.values():
        if port["device_id"] != server_id:
            continue
        net = neutron.networks.get(port["network_id"], {"name": port["network_id"]})
        entries = result.setdefault(net["name"], [])
        for fixed in port["fixed_ips"]:
            version = 6 if ":" in fixed["ip_address"] else 4
            entries.append({"version": version, "addr": fixed["ip_address"], "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
        for fip in neutron.floatingips.values():
            if fip["port_id"] == port["id"]:
                entries.append({"version": 4, "addr": fip["floating_ip_address"], "OS-EXT-IPS:type": "floating",
                                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
    return result


def server_view(ctx: Ctx, server: Resource, *, detail: bool = True) -> Resource:
    tick(server)
    sid = server["id"]
    view: Resource = {"id": sid, "name": server["name"], "links": _links(ctx, sid)}
    if not detail:
        return view
    flavor = server["_flavor"]
    if ctx.at_least(2, 47):
        flavor_view: Resource = {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
                                 "ephemeral": flavor["OS-FLV-EXT-DATA:ephemeral"], "swap": flavor["swap"],
                                 "original_name": flavor["name"]}
        if ctx.is_admin:
            flavor_view["extra_specs"] = dict(flavor["_extra_specs"])
    else:
        flavor_view = {"id": flavor["id"], "links": flavor_link(ctx, flavor["id"])}
    image: Any = ""
    if server["_image"]:
        href = f"{ctx.base}/images/{server['_image']}"
        image = {"id": server["_image"], "links": [{"rel": "bookmark", "href": href}]}
    deleted = server["status"] == "DELETED"
    view.update({
        "status": server["status"], "tenant_id": server["tenant_id"], "user_id": server["user_id"],
        "metadata": dict(server["metadata"]), "hostId": "" if deleted else server["_host_id"],
        "image": image, "flavor": flavor_view, "created": iso(server["_created"]), "updated": iso(server["_updated"]),
        "addresses": {} if deleted else addresses(ctx, sid), "accessIPv4": server["accessIPv4"],
        "accessIPv6": server["accessIPv6"], "OS-DCF:diskConfig": "MANUAL",
        "progress": 100 if server["status"] == "ACTIVE" else 0,
        "OS-EXT-AZ:availability_zone": server["_az"], "config_drive": "", "key_name": server["key_name"],
        "OS-SRV-USG:launched_at": iso(server.get("_launched"), micro=True, zulu=False),
        "OS-SRV-USG:terminated_at": iso(server.get("_terminated"), micro=True, zulu=False),
        "OS-EXT-STS:task_state": server["_task_state"], "OS-EXT-STS:vm_state": server["_vm_state"],
        "OS-EXT-STS:power_state": POWER.get(server["status"], 0),
        "os-extended-volumes:volumes_attached": [{"id": v, "delete_on_termination": False}
                                                 for v in server["_volumes"]],
        "security_groups": [{"name": n} for n in server["_security_groups"]],
    })
    if ctx.is_admin:
        view.update({"OS-EXT-SRV-ATTR:host": "compute-0", "OS-EXT-SRV-ATTR:instance_name": server["_instance_name"],
                     "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute-0"})
        if ctx.at_least(2, 3):
            view.update({"OS-EXT-SRV-ATTR:reservation_id": server["_reservation"], "OS-EXT-SRV-ATTR:launch_index": 0,
                         "OS-EXT-SRV-ATTR:hostname": server["_hostname"], "OS-EXT-SRV-ATTR:kernel_id": "",
                         "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                         "OS-EXT-SRV-ATTR:user_data": server["_user_data"]})
    if ctx.at_least(2, 9):
        view["locked"] = server["_locked"]
    if ctx.at_least(2, 16) and ctx.is_admin:
        view["host_status"] = "UP"
    if ctx.at_least(2, 19):
        view["description"] = server["_description"]
    if ctx.at_least(2, 26):
        view["tags"] = list(server["_tags"])
    if ctx.at_least(2, 63):
        view["trusted_image_certificates"] = None
    if ctx.at_least(2, 71):
        view["server_groups"] = []
    if ctx.at_least(2, 73):
        view["locked_reason"] = server["_locked_reason"]
    if ctx.at_least(2, 96):
        view["pinned_availability_zone"] = server["_pinned_az"]
    if ctx.at_least(2, 100):
        view["scheduler_hints"] = {}
    if server["status"] == "ERROR" and server.get("fault"):
        view["fault"] = server["fault"]
    return view


def _visible(ctx: Ctx, server: Resource) -> bool:
    return bool(ctx.is_admin or server["tenant_id"] == ctx.project_id)


def _find(ctx: Ctx) -> Resource | None:
    server = ctx.site.nova.servers.get(ctx.params["id"])
    return server if server is not None and _visible(ctx, server) else None


def _gone(ctx: Ctx) -> web.Response:
    return not_found(ctx, f"Instance {ctx.params['id']} could not be found.")


@router.route("GET", "/v2.1/servers")
@router.route("GET", "/v2.1/servers/detail")
async def list_servers(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    nova = ctx.site.nova
    since = parse_iso(q["changes-since"]) if "changes-since" in q else None
    if "changes-since" in q and since is None:
        return error(ctx, 400, f"Invalid input for query parameters changes-since. Value: {q['changes-since']}.")
    before = parse_iso(q["changes-before"]) if "changes-before" in q else None
    pool = list(nova.servers.values())
    if since is not None or q.get("deleted", "").lower() in ("true", "1"):
        pool += list(nova.deleted.values())
    all_tenants = ctx.is_admin and ("all_tenants" in q and q["all_tenants"].lower() not in ("0", "false", "off"))
    project = q.get("project_id") or q.get("tenant_id")
    if not ctx.is_admin or not (all_tenants or project):
        project = ctx.project_id
    name_re = re.compile(q["name"]) if "name" in q else None
    statuses = {s.upper() for s in q.getall("status", [])}
    items = []
    for server in pool:
        tick(server)
        if project and server["tenant_id"] != project:
            continue
        if name_re and not name_re.search(server["name"]):
            continue
        if statuses and server["status"] not in statuses:
            continue
        if since is not None and server["_updated"] < since:
            continue
        if before is not None and server["_updated"] > before:
            continue
        if "flavor" in q and server["_flavor"]["id"] != q["flavor"]:
            continue
        if "image" in q and server["_image"] != q["image"]:
            continue
        if "tags" in q and not set(q["tags"].split(",")) <= set(server["_tags"]):
            continue
        items.append(server)
    reverse = q.get("sort_dir", "desc") != "asc"
    key = q.get("sort_key", "created_at")
    field = {"created_at": "_created", "updated_at": "_updated", "display_name": "name"}.get(key, "_created")
    items.sort(key=lambda s: (s[field], s["id"]), reverse=reverse)
    if "limit" in q and not q["limit"].isdigit():
        return error(ctx, 400, f"Invalid input for query parameters limit. Value: {q['limit']}. "
                               f"'{q['limit']}' does not match '^[0-9]*$'")
    limit = page_size(ctx, int_param(q.get("limit")), 1000)  # osapi_max_limit
    page, _, found = paginate(items, limit, q.get("marker"))
    if not found:
        return error(ctx, 400, f"marker [{q.get('marker')}] not found")
    detail = ctx.path.rstrip("/").endswith("/detail")
    body: Resource = {"servers": [server_view(ctx, s, detail=detail) for s in page]}
    if page and len(page) == limit:
        body["servers_links"] = [{"rel": "next", "href": next_href(ctx, f"{ctx.base}{ctx.path}", page[-1]["id"],
                                                                   limit)}]
    return json_response(body)


def _resolve_networks(ctx: Ctx, requested: Any) -> list[Resource] | web.Response:
    if requested in (None, "none"):
        return []
    neutron = ctx.site.neutron
    if requested == "auto":
        nets = [n for n in neutron.networks.values()
                if n["project_id"] == ctx.project_id or n["shared"]][:1]
        return [{"uuid": n["id"]} for n in nets]
    if not isinstance(requested, list):
        return error(ctx, 400, f"Invalid input for field/attribute networks. Value: {requested}.")
    for entry in requested:
        if not isinstance(entry, dict):
            return error(ctx, 400, f"Invalid input for field/attribute networks. Value: {requested}.")
        if "port" in entry and entry["port"] not in neutron.ports:
            return error(ctx, 400, f"Port {entry['port']} could not be found.")
        if "uuid" in entry and entry["uuid"] not in neutron.networks:
            return error(ctx, 400, f"Network {entry['uuid']} could not be found.")
    return list(requested)


@router.route("POST", "/v2.1/servers")
async def create_server(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body("server")
    nova = ctx.site.nova
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return error(ctx, 400, f"Invalid input for field/attribute name. Value: {name}.")
    flavor_ref = str(body.get("flavorRef", "")).rstrip("/").rsplit("/", 1)[-1]
    flavor = nova.flavors.get(flavor_ref)
    if flavor is None or not visible_flavor(ctx, flavor):
        return error(ctx, 400, f"Flavor {flavor_ref} could not be found.")
    bdm = body.get("block_device_mapping_v2") or []
    boot_from_volume = any(str(b.get("boot_index", "")) == "0" and b.get("destination_type") == "volume" for b in bdm)
    image_ref = str(body.get("imageRef") or "").rstrip("/").rsplit("/", 1)[-1]
    if not boot_from_volume:
        image = ctx.site.glance.images.get(image_ref) if ctx.site._glance is not None else None
        if not image_ref or image is None:
            return error(ctx, 400, f"Image {image_ref} could not be found.")
        if image["status"] != "active":
            return error(ctx, 400, f"Image {image_ref} is not active.")
    if "networks" not in body and ctx.at_least(2, 37):
        return error(ctx, 400, f"Invalid input for field/attribute server. Value: {body}. 'networks' is a required "
                               "property")
    networks = _resolve_networks(ctx, body.get("networks"))
    if isinstance(networks, web.Response):
        return networks
    key_name = body.get("key_name")
    if key_name is not None and (ctx.user_id, key_name) not in nova.keypairs:
        return error(ctx, 400, "Invalid key_name provided.")
    over = check_quota(ctx, ctx.project_id, {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]})
    if over is not None:
        return over
    server = server_record(nova, name=name, project_id=ctx.project_id, user_id=ctx.user_id, flavor=flavor,
                           image="" if boot_from_volume else image_ref, body=body, boot_delay=ctx.site.boot_delay)
    sid, groups = server["id"], server["_security_groups"]
    for entry in networks:
        if "port" in entry:
            port = ctx.site.neutron.ports[entry["port"]]
            port.update(device_id=sid, device_owner="compute:nova", status="ACTIVE")
            continue
        made = neutron_base.allocate_port(ctx.site, ctx.project_id, entry["uuid"], device_id=sid,
                                          device_owner="compute:nova", fixed_ip=entry.get("fixed_ip"))
        if isinstance(made, str):
            neutron_base.release_ports(ctx.site, sid)
            return error(ctx, 400, made)
        made["status"] = "ACTIVE"
    nova.servers[sid] = server
    nova_logs.record(ctx, server, "create")
    tick(server)
    reply: Resource = {"id": sid, "links": _links(ctx, sid), "OS-DCF:diskConfig": "MANUAL",
                       "security_groups": [{"name": g} for g in groups]}
    reply["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return json_response({"server": reply}, 202, {"Location": f"{ctx.base}/v2.1/servers/{sid}"})


@router.route("GET,PUT,DELETE", "/v2.1/servers/{id}")
async def server_item(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    if ctx.method == "GET":
        return json_response({"server": server_view(ctx, server)})
    if ctx.method == "DELETE":
        if server["_locked"] and not ctx.is_admin:
            return error(ctx, 409, f"Instance {server['id']} is locked")
        delete_server(ctx, server)
        return empty(204)
    body = await ctx.body("server")
    for key in ("name", "accessIPv4", "accessIPv6"):
        if key in body:
            server[key] = body[key]
    if "description" in body:
        server["_description"] = body["description"]
    server["_updated"] = time.time()
    return json_response({"server": server_view(ctx, server)})


def server_record(nova: NovaState, *, name: str, project_id: str, user_id: str, flavor: Resource, image: str,
                  body: Resource, boot_delay: float) -> Resource:
    """A new server of ``project_id`` (status BUILD until ``boot_delay`` has passed)."""
    sid = str(uuid.uuid4())
    now = time.time()
    groups = [g.get("name", "default") for g in body.get("security_groups") or [{"name": "default"}]]
    return {
        "id": sid, "name": name, "status": "BUILD", "tenant_id": project_id, "user_id": user_id,
        "metadata": {str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
        "key_name": body.get("key_name"), "accessIPv4": body.get("accessIPv4", ""),
        "accessIPv6": body.get("accessIPv6", ""),
        "_flavor": flavor, "_vcpus": flavor["vcpus"], "_ram": flavor["ram"],
        "_image": image, "_created": now, "_updated": now,
        "_active_at": now + boot_delay, "_az": body.get("availability_zone") or "nova",
        "_pinned_az": body.get("availability_zone"), "_task_state": "scheduling", "_vm_state": "building",
        "_host_id": secrets.token_hex(28),
        "_instance_name": f"instance-{len(nova.servers) + len(nova.deleted) + 1:08x}",
        "_reservation": f"r-{secrets.token_hex(4)}", "_hostname": re.sub(r"[^a-z0-9-]", "-", name.lower())[:63],
        "_user_data": body.get("user_data"), "_locked": False, "_locked_reason": None,
        "_description": body.get("description"), "_tags": list(body.get("tags") or []), "_volumes": [],
        "_security_groups": groups, "_launched": None, "_terminated": None,
    }


def place_server(site: Site, project_id: str, *, vcpus: int, ram: int, name: str = "placed") -> Resource:
    """A running server of ``project_id`` placed straight into the site's state (usage that appears
    behind Skyfleet's back, for tests and demos): no network, no quota check."""
    flavor = new_flavor(f"placed-{vcpus}-{ram}", f"placed-{vcpus}-{ram}", vcpus, ram, 0)
    server = server_record(site.nova, name=name, project_id=project_id, user_id="", flavor=flavor, image="",
                           body={}, boot_delay=0.0)
    site.nova.servers[server["id"]] = tick(server)
    return server


def remove_server(site: Site, server_id: str) -> None:
    """Delete a server behind Skyfleet's back (it shows as DELETED in ``changes-since`` listings)."""
    server = site.nova.servers.pop(server_id)
    now = time.time()
    server.update(status="DELETED", _vm_state="deleted", _task_state=None, _updated=now, _terminated=now)
    site.nova.deleted[server_id] = server


def delete_server(ctx: Ctx, server: Resource) -> None:
    if server["id"] in ctx.site.nova.servers:
        remove_server(ctx.site, server["id"])
    if ctx.site._neutron is not None:
        neutron_base.release_ports(ctx.site, server["id"])


@router.route("POST", "/v2.1/servers/{id}/action")
async def server_action(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    body = await ctx.json()
    action = next(iter(body), "") if isinstance(body, dict) else ""
    tick(server)
    transitions = {"os-stop": ("ACTIVE", "SHUTOFF", "stopped"), "os-start": ("SHUTOFF", "ACTIVE", "active"),
                   "pause": ("ACTIVE", "PAUSED", "paused"), "unpause": ("PAUSED", "ACTIVE", "active"),
                   "suspend": ("ACTIVE", "SUSPENDED", "suspended"), "resume": ("SUSPENDED", "ACTIVE", "active")}
    if action == "os-getConsoleOutput":
        return nova_logs.console_response(server, body)
    if action in transitions:
        source, target, vm_state = transitions[action]
        if server["status"] != source:
            return error(ctx, 409, f"Cannot '{action.removeprefix('os-')}' instance {server['id']} while it is in "
                                   f"vm_state {server['_vm_state']}")
        server.update(status=target, _vm_state=vm_state)
    elif action == "reboot":
        if server["status"] not in ("ACTIVE", "SHUTOFF", "ERROR"):
            return error(ctx, 409, f"Cannot 'reboot' instance {server['id']} while it is in vm_state "
                                   f"{server['_vm_state']}")
        server.update(status="ACTIVE", _vm_state="active")
    elif action in ("lock", "unlock"):
        server["_locked"] = action == "lock"
        server["_locked_reason"] = (body[action] or {}).get("locked_reason") if action == "lock" else None
    elif action in ("addSecurityGroup", "removeSecurityGroup"):
        group = (body[action] or {}).get("name", "")
        if action == "addSecurityGroup" and group not in server["_security_groups"]:
            server["_security_groups"].append(group)
        elif action == "removeSecurityGroup" and group in server["_security_groups"]:
            server["_security_groups"].remove(group)
    else:
        return not_found(ctx, f"There is no such action: {action}")
    server["_updated"] = time.time()
    nova_logs.record(ctx, server, {"os-stop": "stop", "os-start": "start"}.get(action, action))
    return empty(202)


@router.route("GET,POST,PUT", "/v2.1/servers/{id}/metadata")
async def metadata(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    if ctx.method != "GET":
        items = (await ctx.json()).get("metadata")
        if not isinstance(items, dict):
            return error(ctx, 400, "Malformed request body")
        if ctx.method == "PUT":
            server["metadata"] = {}
        server["metadata"].update({str(k): str(v) for k, v in items.items()})
        server["_updated"] = time.time()
    return json_response({"metadata": dict(server["metadata"])})


@router.route("GET,PUT,DELETE", "/v2.1/servers/{id}/metadata/{key}")
async def metadata_item(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    key = ctx.params["key"]
    if ctx.method == "PUT":
        meta = (await ctx.json()).get("meta")
        if not isinstance(meta, dict) or key not in meta:
            return error(ctx, 400, "Request body and URI mismatch")
        server["metadata"][key] = str(meta[key])
        return json_response({"meta": {key: server["metadata"][key]}})
    if key not in server["metadata"]:
        return not_found(ctx, "Metadata item was not found")
    if ctx.method == "DELETE":
        del server["metadata"][key]
        return empty(204)
    return json_response({"meta": {key: server["metadata"][key]}})


@router.route("GET,PUT,DELETE", "/v2.1/servers/{id}/tags")
async def tags(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    if ctx.method == "PUT":
        server["_tags"] = [str(t) for t in (await ctx.json()).get("tags", [])]
    elif ctx.method == "DELETE":
        server["_tags"] = []
        return empty(204)
    return json_response({"tags": list(server["_tags"])})


@router.route("GET,PUT,DELETE", "/v2.1/servers/{id}/tags/{tag}")
async def tag_item(ctx: Ctx) -> web.StreamResponse:
    server = _find(ctx)
    if server is None:
        return _gone(ctx)
    tag = ctx.params["tag"]
    if ctx.method == "PUT":
        if tag in server["_tags"]:
            return empty(204)
        server["_tags"].append(tag)
        return empty(201, {"Location": f"{ctx.base}/v2.1/servers/{server['id']}/tags/{tag}"})
    if tag not in server["_tags"]:
        return not_found(ctx, f"Tag {tag} could not be found.")
    if ctx.method == "DELETE":
        server["_tags"].remove(tag)
    return empty(204)
