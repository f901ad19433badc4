"""Simulated Nova flavors (with extra specs and project access) and keypairs.

Why it exists: Skyfleet replicates flavors and keypairs across sites; these are the nova calls it
makes for that, with nova's visibility rules, microversion-dependent fields and error bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
import uuid
from typing import Any

from aiohttp import web

from .httpkit import Ctx, Router, empty, int_param, json_response, next_href, page_size, paginate
from .nova_base import as_int, error, flavor_link, not_found, policy_denied, quota_limits, visible_flavor
from .state import Resource, iso

router = Router()
KNOWN_SPECS = {  # enumerated extra specs nova validates from microversion 2.86
    "hw:cpu_policy": ("dedicated", "shared", "mixed"),
    "hw:cpu_thread_policy": ("prefer", "isolate", "require"),
    "hw:mem_page_size": ("small", "large", "any"),
    "hw:numa_nodes": tuple(str(n) for n in range(1, 9)),
}
KEY_NAME = re.compile(r"^[a-zA-Z0-9 _.@-]{1,255}$")


# --- flavors ---------------------------------------------------------------------------------------

def flavor_view(ctx: Ctx, flavor: Resource, *, detail: bool = True) -> Resource:
    view: Resource = {"id": flavor["id"], "name": flavor["name"], "links": flavor_link(ctx, flavor["id"])}
    if ctx.at_least(2, 55):
        view["description"] = flavor["description"]
    if not detail:
        return view
    swap = flavor["swap"]
    view.update({"ram": flavor["ram"], "disk": flavor["disk"], "vcpus": flavor["vcpus"],
                 "OS-FLV-EXT-DATA:ephemeral": flavor["OS-FLV-EXT-DATA:ephemeral"],
                 "swap": swap if swap or ctx.at_least(2, 75) else "",
                 "OS-FLV-DISABLED:disabled": flavor["OS-FLV-DISABLED:disabled"],
                 "os-flavor-access:is_public": flavor["os-flavor-access:is_public"]})
    if not ctx.at_least(2, 75):
        view["rxtx_factor"] = flavor["rxtx_factor"]
    if ctx.at_least(2, 61):
        view["extra_specs"] = dict(flavor["_extra_specs"])
    return view


def _lookup(ctx: Ctx) -> Resource | None:
    flavor = ctx.site.nova.flavors.get(ctx.params["id"])
    return flavor if flavor is not None and visible_flavor(ctx, flavor) else None


def _missing(ctx: Ctx) -> web.Response:
    return not_found(ctx, f"Flavor {ctx.params['id']} could not be found.")


@router.route("GET", "/v2.1/flavors")
@router.route("GET", "/v2.1/flavors/detail")
async def list_flavors(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    raw_public = q.get("is_public", "true").lower()
    public: bool | None = None if raw_public in ("none", "all") else raw_public in ("true", "t", "1", "yes", "y")
    if not ctx.is_admin:
        public = True
    min_ram, min_disk = int_param(q.get("minRam"), 0) or 0, int_param(q.get("minDisk"), 0) or 0
    items = []
    for f in sorted(ctx.site.nova.flavors.values(), key=lambda f: (f["_flavorid_sort"], f["id"])):
        accessible = ctx.project_id in f["_access"]
        if public is True and not (f["os-flavor-access:is_public"] or accessible):
            continue
        if public is False and f["os-flavor-access:is_public"]:
            continue
        if f["ram"] < min_ram or f["disk"] < min_disk:
            continue
        items.append(f)
    limit = page_size(ctx, int_param(q.get("limit")))
    page, last, found = paginate(items, limit, q.get("marker"))
    if not found:
        return error(ctx, 400, f"marker [{q.get('marker')}] not found")
    detail = ctx.path.rstrip("/").endswith("/detail")
    body: Resource = {"flavors": [flavor_view(ctx, f, detail=detail) for f in page]}
    if last is not None:
        body["flavors_links"] = [{"rel": "next", "href": next_href(ctx, f"{ctx.base}{ctx.path}", last, limit)}]
    return json_response(body)


@router.route("POST", "/v2.1/flavors")
async def create_flavor(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-flavor-manage:create")
    body = await ctx.body("flavor")
    nova = ctx.site.nova
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return error(ctx, 400, f"Invalid input for field/attribute name. Value: {name}.")
    try:
        ram, vcpus, disk = as_int(body.get("ram"), "ram"), as_int(body.get("vcpus"), "vcpus"), \
            as_int(body.get("disk"), "disk")
        ephemeral = as_int(body.get("OS-FLV-EXT-DATA:ephemeral", 0), "OS-FLV-EXT-DATA:ephemeral")
        swap = as_int(body.get("swap", 0) or 0, "swap")
    except ValueError as exc:
        return error(ctx, 400, str(exc))
    if ram < 1 or vcpus < 1 or disk < 0:
        return error(ctx, 400, "Invalid input for field/attribute flavor. Value out of range.")
    fid = str(body.get("id") or uuid.uuid4())
    if any(f["name"] == name for f in nova.flavors.values()):
        return error(ctx, 409, f"Flavor with name {name} already exists.")
    if fid in nova.flavors:
        return error(ctx, 409, f"Flavor with ID {fid} already exists.")
    nova.flavors[fid] = new_flavor(fid, name, vcpus, ram, disk, ephemeral=ephemeral, swap=swap,
                                   is_public=bool(body.get("os-flavor-access:is_public", True)),
                                   description=body.get("description"),
                                   rxtx=float(body.get("rxtx_factor", 1.0)))
    return json_response({"flavor": flavor_view(ctx, nova.flavors[fid])})


def new_flavor(fid: str, name: str, vcpus: int, ram: int, disk: int, *, ephemeral: int = 0, swap: int = 0,
               is_public: bool = True, description: str | None = None, rxtx: float = 1.0) -> Resource:
    return {"id": fid, "name": name, "ram": ram, "disk": disk, "vcpus": vcpus, "OS-FLV-EXT-DATA:ephemeral": ephemeral,
            "swap": swap, "rxtx_factor": rxtx, "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": is_public, "description": description, "_extra_specs": {},
            "_access": set(), "_flavorid_sort": (0, int(fid)) if fid.isdigit() else (1, 0)}


def default_flavors() -> dict[str, Resource]:
    specs = [("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
             ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160), ("42", "m1.nano", 1, 128, 1),
             ("84", "m1.micro", 1, 192, 1)]
    return {fid: new_flavor(fid, name, vcpus, ram, disk) for fid, name, vcpus, ram, disk in specs}


@router.route("GET,PUT,DELETE", "/v2.1/flavors/{id}")
async def flavor_item(ctx: Ctx) -> web.StreamResponse:
    flavor = _lookup(ctx)
    if ctx.method != "GET" and not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-flavor-manage:" + ("update" if ctx.method == "PUT" else "delete"))
    if flavor is None:
        return _missing(ctx)
    if ctx.method == "DELETE":
        del ctx.site.nova.flavors[flavor["id"]]
        return empty(202)
    if ctx.method == "PUT":
        if not ctx.at_least(2, 55):
            return error(ctx, 405, "The method specified is not allowed for this resource.")
        flavor["description"] = (await ctx.body("flavor")).get("description")
    return json_response({"flavor": flavor_view(ctx, flavor)})


@router.route("GET,POST", "/v2.1/flavors/{id}/os-extra_specs")
async def extra_specs(ctx: Ctx) -> web.StreamResponse:
    flavor = _lookup(ctx)
    if flavor is None:
        return _missing(ctx)
    if ctx.method == "POST":
        if not ctx.is_admin:
            return policy_denied(ctx, "os_compute_api:os-flavor-extra-specs:create")
        specs = (await ctx.json()).get("extra_specs")
        if not isinstance(specs, dict):
            return error(ctx, 400, "Invalid input for field/attribute extra_specs.")
        if ctx.at_least(2, 86):
            for key, value in specs.items():
                allowed = KNOWN_SPECS.get(str(key))
                if allowed is not None and str(value) not in allowed:
                    return error(ctx, 400, f"Validation failed; extra spec '{key}' has invalid value '{value}'; "
                                           f"valid values are: {', '.join(allowed)}.")
        flavor["_extra_specs"].update({str(k): str(v) for k, v in specs.items()})
        return json_response({"extra_specs": {str(k): str(v) for k, v in specs.items()}})
    return json_response({"extra_specs": dict(flavor["_extra_specs"])})


@router.route("GET,PUT,DELETE", "/v2.1/flavors/{id}/os-extra_specs/{key}")
async def extra_spec(ctx: Ctx) -> web.StreamResponse:
    flavor = _lookup(ctx)
    key = ctx.params["key"]
    if flavor is None:
        return _missing(ctx)
    specs: dict[str, str] = flavor["_extra_specs"]
    if ctx.method == "PUT":
        if not ctx.is_admin:
            return policy_denied(ctx, "os_compute_api:os-flavor-extra-specs:update")
        body = await ctx.json()
        if not isinstance(body, dict) or list(body) != [key]:
            return error(ctx, 400, "Request body and URI mismatch")
        specs[key] = str(body[key])
        return json_response({key: specs[key]})
    if key not in specs:
        return not_found(ctx, f"Flavor {flavor['id']} has no extra specs with key {key}.")
    if ctx.method == "DELETE":
        if not ctx.is_admin:
            return policy_denied(ctx, "os_compute_api:os-flavor-extra-specs:delete")
        del specs[key]
        return empty(200)
    return json_response({key: specs[key]})


def _access_list(flavor: Resource) -> Resource:
    return {"flavor_access": [{"flavor_id": flavor["id"], "tenant_id": p} for p in sorted(flavor["_access"])]}


@router.route("GET", "/v2.1/flavors/{id}/os-flavor-access")
async def flavor_access(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-flavor-access")
    flavor = _lookup(ctx)
    if flavor is None:
        return _missing(ctx)
    if flavor["os-flavor-access:is_public"]:
        return not_found(ctx, "Access list not available for public flavors.")
    return json_response(_access_list(flavor))


@router.route("POST", "/v2.1/flavors/{id}/action")
async def flavor_action(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.json()
    action = next(iter(body), "") if isinstance(body, dict) else ""
    if action not in ("addTenantAccess", "removeTenantAccess"):
        return not_found(ctx, f"There is no such action: {action}")
    if not ctx.is_admin:
        return policy_denied(ctx, f"os_compute_api:os-flavor-access:{'add' if action[0] == 'a' else 'remove'}"
                                  "_tenant_access")
    flavor = _lookup(ctx)
    if flavor is None:
        return _missing(ctx)
    tenant = str((body[action] or {}).get("tenant", ""))
    if flavor["os-flavor-access:is_public"]:
        return error(ctx, 409, "Can not add access to a public flavor.")
    if action == "addTenantAccess":
        if tenant in flavor["_access"]:
            return error(ctx, 409, f"Flavor access already exists for flavor {flavor['id']} and project "
                                   f"{tenant} combination.")
        flavor["_access"].add(tenant)
    else:
        if tenant not in flavor["_access"]:
            return not_found(ctx, f"Flavor access not found for {flavor['id']} / {tenant} combination.")
        flavor["_access"].discard(tenant)
    return json_response(_access_list(flavor))


# --- keypairs --------------------------------------------------------------------------------------

def fingerprint(public_key: str) -> str | None:
    parts = public_key.strip().split()
    if len(parts) < 2 or not (parts[0].startswith(("ssh-", "ecdsa-", "sk-"))):
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def keypair_view(ctx: Ctx, kp: Resource, *, full: bool) -> Resource:
    view = {"name": kp["name"], "public_key": kp["public_key"], "fingerprint": kp["fingerprint"]}
    if ctx.at_least(2, 2):
        view["type"] = kp["type"]
    if full:
        view.update({"user_id": kp["user_id"], "id": kp["id"], "created_at": iso(kp["_created"], micro=True,
                                                                                zulu=False),
                     "deleted": False, "deleted_at": None, "updated_at": None})
    return view


def _key_user(ctx: Ctx) -> str:
    wanted = ctx.query.get("user_id")
    return wanted if wanted and ctx.is_admin and ctx.at_least(2, 10) else ctx.user_id


@router.route("GET", "/v2.1/os-keypairs")
async def list_keypairs(ctx: Ctx) -> web.StreamResponse:
    uid = _key_user(ctx)
    items = sorted((kp for (u, _), kp in ctx.site.nova.keypairs.items() if u == uid), key=lambda k: k["name"])
    page, last, found = paginate(items, int_param(ctx.query.get("limit")), ctx.query.get("marker"), key="name")
    if not found:
        return error(ctx, 400, f"marker [{ctx.query.get('marker')}] not found")
    body: Resource = {"keypairs": [{"keypair": keypair_view(ctx, kp, full=False)} for kp in page]}
    if last is not None:
        body["keypairs_links"] = [{"rel": "next", "href": f"{ctx.base}/v2.1/os-keypairs?marker={last}"}]
    return json_response(body)


@router.route("POST", "/v2.1/os-keypairs")
async def create_keypair(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body("keypair")
    nova = ctx.site.nova
    uid = str(body.get("user_id") or ctx.user_id) if ctx.is_admin and ctx.at_least(2, 10) else ctx.user_id
    name = body.get("name")
    if not isinstance(name, str) or not KEY_NAME.match(name):
        return error(ctx, 400, f"Invalid input for field/attribute name. Value: {name}.")
    public_key: Any = body.get("public_key")
    if public_key is None and ctx.at_least(2, 92):
        return error(ctx, 400, f"Invalid input for field/attribute keypair. Value: {body}. 'public_key' is a required "
                               "property")
    private_key = None
    if public_key is None:
        public_key, private_key = _generated_key(name)
    fp = fingerprint(str(public_key))
    if fp is None:
        return error(ctx, 400, "Keypair data is invalid: failed to generate fingerprint")
    if (uid, name) in nova.keypairs:
        return error(ctx, 409, f"Key pair '{name}' already exists.")
    limit = quota_limits(ctx.site, ctx.project_id)["key_pairs"]
    forced = ctx.faults is not None and ctx.faults.quota_exceeded
    if forced or (limit >= 0 and sum(1 for (u, _) in nova.keypairs if u == uid) >= limit):
        return error(ctx, 403, "Quota exceeded, too many key pairs.")
    kp = {"name": name, "public_key": str(public_key), "fingerprint": fp, "type": body.get("type", "ssh"),
          "user_id": uid, "id": len(nova.keypairs) + 1, "_created": time.time()}
    nova.keypairs[(uid, name)] = kp
    view = keypair_view(ctx, kp, full=False)
    view["user_id"] = uid
    if private_key:
        view["private_key"] = private_key
    return json_response({"keypair": view}, 201 if ctx.at_least(2, 2) else 200)


def _generated_key(name: str) -> tuple[str, str]:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + uuid.uuid4().bytes + uuid.uuid4().bytes
    public = f"ssh-ed25519 {base64.b64encode(blob).decode()} Generated-by-Nova"
    private = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.b64encode(uuid.uuid4().bytes * 4).decode() + \
        "\n-----END OPENSSH PRIVATE KEY-----\n"
    return public, private


@router.route("GET,DELETE", "/v2.1/os-keypairs/{name}")
async def keypair_item(ctx: Ctx) -> web.StreamResponse:
    uid = _key_user(ctx)
    kp = ctx.site.nova.keypairs.get((uid, ctx.params["name"]))
    if kp is None:
        return not_found(ctx, f"Keypair {ctx.params['name']} not found for user {uid}")
    if ctx.method == "DELETE":
        del ctx.site.nova.keypairs[(uid, kp["name"])]
        return empty(204 if ctx.at_least(2, 2) else 202)
    return json_response({"keypair": keypair_view(ctx, kp, full=True)})
