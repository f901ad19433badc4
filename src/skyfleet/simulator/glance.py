"""Simulated Glance (image v2): images with custom properties, tags, visibility, json-patch updates,
chunked upload/download with md5 and sha512 hashes, filters and marker pagination.

Why it exists: Skyfleet distributes images to every site and verifies them by hash; this module
speaks glance's protocol, including the slow-transfer faults that tests resumable copies and the
image benchmark use. An image's data may be generated rather than stored, and a simulator may keep
only the digest of what is uploaded (:mod:`.imagedata`), so multi-GiB copies fit in little memory.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aiohttp import web

from .faults import Pace, piece_size, throttled
from .httpkit import (
    Ctx,
    Router,
    empty,
    identity_v3_url,
    int_param,
    json_response,
    page_size,
    redirect,
    request_id,
    webob_error,
)
from .imagedata import HEAD, Digest, DigestSink, Generated, ImageData, pieces
from .state import Resource, Site, iso, new_id

router = Router()
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
READ_ONLY = {"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size", "created_at",
             "updated_at", "owner", "self", "file", "schema", "direct_url", "locations", "stores"}
CORE = READ_ONLY | {"name", "visibility", "protected", "os_hidden", "tags", "min_ram", "min_disk", "disk_format",
                    "container_format"}
# What glance 2025-2026 lists (and in this order) without the cache API (v2.14) and the new location
# API (v2.16), which need a configured image cache and location strategy.
VERSIONS = ["v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.17", "v2.7", "v2.6", "v2.5", "v2.4",
            "v2.3", "v2.2", "v2.1", "v2.0"]


def error(ctx: Ctx, status: int, message: str) -> web.Response:
    return webob_error(ctx, status, message)


def unauthorized(ctx: Ctx) -> web.Response:
    """glance answers a missing or bad token with webob's 401, not keystonemiddleware's JSON."""
    response = webob_error(ctx, 401, "This server could not verify that you are authorized to access the document "
                                     "you requested. Either you supplied the wrong credentials (e.g., bad password), "
                                     "or your browser does not understand how to supply the credentials required.")
    response.headers["WWW-Authenticate"] = f'Keystone uri="{identity_v3_url(ctx)}"'
    return response


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    """The unauthenticated version list at the root and /versions; /v2 itself is behind keystonemiddleware."""
    if ctx.method != "GET" or ctx.path not in ("/", "/versions"):
        return None
    versions = [{"id": v, "status": "CURRENT" if v == "v2.17" else "SUPPORTED",
                 "links": [{"rel": "self", "href": f"{ctx.base}/v2/"}]} for v in VERSIONS]
    return json_response({"versions": versions}, 200 if ctx.path == "/versions" else 300)


async def handle(ctx: Ctx) -> web.StreamResponse:
    if ctx.path == "/v2":
        return redirect(f"{ctx.base}/v2/")
    handler, params, known = router.match(ctx.method, ctx.path)
    if handler is None:
        return error(ctx, 405 if known else 404, "The resource could not be found.")
    ctx.params = params
    return await handler(ctx)


def image_view(ctx: Ctx, image: Resource) -> Resource:
    view = {k: v for k, v in image.items() if not k.startswith("_")}
    iid = image["id"]
    view.update({"self": f"/v2/images/{iid}", "file": f"/v2/images/{iid}/file", "schema": "/v2/schemas/image",
                 "tags": list(image["tags"])})
    return view


def _visible(ctx: Ctx, image: Resource) -> bool:
    return bool(ctx.is_admin or image["owner"] == ctx.project_id or image["visibility"] in ("public", "community")
                or (image["visibility"] == "shared" and ctx.project_id in image.get("_members", {})))


def _find(ctx: Ctx) -> Resource | None:
    image = ctx.site.glance.images.get(ctx.params["id"])
    return image if image is not None and _visible(ctx, image) else None


def _gone(ctx: Ctx) -> web.Response:
    return error(ctx, 404, f"No image found with ID {ctx.params['id']}")


def _can_write(ctx: Ctx, image: Resource) -> bool:
    return bool(ctx.is_admin or image["owner"] == ctx.project_id)


@router.route("GET", "/v2/images")
async def list_images(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    items = []
    visibility = q.get("visibility")
    for image in ctx.site.glance.images.values():
        if not _visible(ctx, image):
            continue
        if visibility and visibility != "all" and image["visibility"] != visibility:
            continue
        if not visibility and image["visibility"] == "community" and image["owner"] != ctx.project_id:
            continue
        if q.get("os_hidden", "false").lower() != "true" and image["os_hidden"]:
            continue
        ok = all(str(image.get(key)) == q[key] for key in ("name", "status", "owner", "disk_format",
                                                           "container_format", "id") if key in q)
        if "protected" in q:
            ok = ok and str(image["protected"]).lower() == q["protected"].lower()
        if ok and all(t in image["tags"] for t in q.getall("tag", [])):
            items.append(image)
    sort_key, sort_dir = q.get("sort_key", "created_at"), q.get("sort_dir", "desc")
    if "sort" in q:
        sort_key, _, direction = q["sort"].split(",")[0].partition(":")
        sort_dir = direction or "desc"
    if sort_key not in SORT_KEYS:
        return error(ctx, 400, f"Invalid sort key: {sort_key}. It must be one of the following: "
                               f"{', '.join(SORT_KEYS)}.")
    if "limit" in q and not q["limit"].lstrip("-").isdigit():
        return error(ctx, 400, "limit param must be an integer")
    items.sort(key=lambda i: (str(i.get(sort_key) or ""), i["_seq"]), reverse=sort_dir == "desc")
    limit = page_size(ctx, min(int_param(q.get("limit"), 25) or 25, 1000)) or 25
    start = 0
    if "marker" in q:
        index = next((n for n, i in enumerate(items) if i["id"] == q["marker"]), None)
        if index is None:
            return error(ctx, 400, f"marker [{q['marker']}] not found")
        start = index + 1
    page = items[start : start + limit]
    body: Resource = {"images": [image_view(ctx, i) for i in page], "first": "/v2/images",
                      "schema": "/v2/schemas/images"}
    if page and len(page) == limit:
        extra = "".join(f"&{k}={v}" for k, v in q.items() if k not in ("marker", "limit"))
        body["next"] = f"/v2/images?marker={page[-1]['id']}&limit={limit}{extra}"
    return json_response(body)


@router.route("POST", "/v2/images")
async def create_image(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.json()
    if not isinstance(body, dict):
        return error(ctx, 400, "Invalid image body")
    glance = ctx.site.glance
    for key in body:
        if key in READ_ONLY - {"id", "owner"}:
            return error(ctx, 403, f"Attribute '{key}' is read-only.")
    owner = body.get("owner") or ctx.project_id
    if owner != ctx.project_id and not ctx.is_admin:  # glance: only an admin creates for another project
        return error(ctx, 403, f"You are not permitted to create images owned by '{owner}'.")
    visibility = body.get("visibility", "shared")
    if visibility not in ("public", "private", "shared", "community"):
        return error(ctx, 400, f"Invalid visibility value: {visibility}")
    if visibility == "public" and not ctx.is_admin:
        return error(ctx, 403, "You are not authorized to complete publicize_image action.")
    iid = str(body.get("id") or new_id())
    if iid in glance.images:
        return error(ctx, 409, f"Image with identifier {iid} already exists!")
    extra = {k: v for k, v in body.items() if k not in CORE}
    if any(not isinstance(v, str) for v in extra.values()):
        return error(ctx, 400, "Provided object does not match schema 'image': additional properties must be strings")
    if ctx.faults is not None and ctx.faults.quota_exceeded:
        return error(ctx, 413, "The request returned a 413 Request Entity Too Large. This generally means that rate "
                               "limiting or a quota threshold was breached.\n\nThe response body:\nProject "
                               f"{ctx.project_id} is over a limit for [Resource image_count_total is over limit of "
                               "0 due to current usage 0 and delta 1]")
    now = iso(time.time())
    image: Resource = {
        "id": iid, "name": body.get("name"), "status": "queued", "visibility": visibility,
        "protected": bool(body.get("protected", False)), "os_hidden": bool(body.get("os_hidden", False)),
        "checksum": None, "os_hash_algo": None, "os_hash_value": None, "owner": owner, "size": None,
        "virtual_size": None, "min_ram": int(body.get("min_ram", 0)), "min_disk": int(body.get("min_disk", 0)),
        "disk_format": body.get("disk_format"), "container_format": body.get("container_format"),
        "created_at": now, "updated_at": now, "tags": list(dict.fromkeys(body.get("tags", []))),
        "_seq": len(glance.images), **extra,
    }
    glance.images[iid] = image
    return json_response(image_view(ctx, image), 201, {"Location": f"{ctx.base}/v2/images/{iid}"})


@router.route("GET,DELETE", "/v2/images/{id}")
async def image_item(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    if ctx.method == "GET":
        return json_response(image_view(ctx, image))
    if not _can_write(ctx, image):
        return error(ctx, 403, "You are not permitted to delete this image.")
    if image["protected"]:
        return error(ctx, 403, f"Image {image['id']} is protected and cannot be deleted.")
    del ctx.site.glance.images[image["id"]]
    ctx.site.glance.data.pop(image["id"], None)
    return empty(204)


@router.route("PATCH", "/v2/images/{id}")
async def patch_image(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    content_type = ctx.request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        return error(ctx, 415, f"Content type '{content_type}' is not supported. Supported: {', '.join(PATCH_TYPES)}")
    if not _can_write(ctx, image):
        return error(ctx, 403, "You are not permitted to modify this image.")
    ops = await ctx.json()
    if not isinstance(ops, list):
        return error(ctx, 400, "Request body must be a JSON array of operation objects.")
    for op in ops:
        problem = _apply(ctx, image, op)
        if problem is not None:
            return problem
    image["updated_at"] = iso(time.time())
    return json_response(image_view(ctx, image))


def _apply(ctx: Ctx, image: Resource, op: Any) -> web.Response | None:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove") or "path" not in op:
        return error(ctx, 400, "Operation objects must contain exactly one member named \"add\", \"remove\", or "
                               "\"replace\".")
    parts = str(op["path"]).lstrip("/").split("/")
    key = parts[0]
    if key in READ_ONLY:
        return error(ctx, 403, f"Attribute '{key}' is read-only.")
    if key == "visibility" and op.get("value") == "public" and not ctx.is_admin:
        return error(ctx, 403, "You are not authorized to complete publicize_image action.")
    if op["op"] == "remove":
        if key in CORE:
            return error(ctx, 403, f"Attribute '{key}' is reserved.")
        if key not in image:
            return error(ctx, 409, f"Property {key} does not exist.")
        del image[key]
        return None
    value = op.get("value")
    if key == "tags":
        image["tags"] = list(dict.fromkeys(value or [])) if len(parts) == 1 else image["tags"] + [value]
    elif op["op"] == "replace" and key not in image and key not in CORE:
        return error(ctx, 409, f"Property {key} does not exist.")
    elif key not in CORE and not isinstance(value, str):
        return error(ctx, 400, "Provided object does not match schema 'image': additional properties must be strings")
    else:
        image[key] = value
    return None


@router.route("PUT", "/v2/images/{id}/file")
async def upload(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    if not _can_write(ctx, image):
        return error(ctx, 403, "You are not permitted to upload data to this image.")
    if image["status"] not in ("queued", "saving"):
        return error(ctx, 409, f"Image status transition from {image['status']} to saving is not allowed")
    if image["disk_format"] is None or image["container_format"] is None:
        return error(ctx, 400, "Properties disk_format, container_format must be set prior to saving data.")
    image["status"] = "saving"
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    sink = DigestSink() if ctx.site.digest_only_images else None
    chunks: list[bytes] = []
    fail_after = ctx.faults.image_upload_fail_after if ctx.faults is not None else 0
    pace = Pace(ctx.faults.slow_image_upload_bps if ctx.faults is not None else 0)
    received = 0
    try:
        async for chunk in ctx.request.content.iter_chunked(65536):
            if sink is not None:
                sink.write(chunk)
            else:
                md5.update(chunk)
                sha.update(chunk)
                chunks.append(chunk)
            received += len(chunk)
            if fail_after and received >= fail_after:
                image["status"] = "queued"  # glance's store failed mid-write: the data is dropped
                return error(ctx, 500, "Error in store configuration. Adding images to store is disabled.")
            await pace.wait(received)  # not reading holds the client back, as a slow link would
    except BaseException:
        image["status"] = "queued"
        raise
    data: ImageData
    if sink is not None:
        digest = sink.digest()
        data, checksum, sha512, head = digest, digest.checksum, digest.os_hash_value, digest.head
    else:
        kept = b"".join(chunks)
        data, checksum, sha512, head = kept, md5.hexdigest(), sha.hexdigest(), kept[:HEAD]
    ctx.site.glance.data[image["id"]] = data
    image.update(status="active", size=received, virtual_size=_virtual_size(image["disk_format"], head, received),
                 checksum=checksum, os_hash_algo="sha512", os_hash_value=sha512, updated_at=iso(time.time()))
    return empty(204)


def _virtual_size(disk_format: str, head: bytes, size: int) -> int | None:
    """What glance's format inspector finds: raw is its own size, qcow2 says it in its header."""
    if disk_format == "raw":
        return size
    if disk_format == "qcow2" and len(head) >= 32 and head[:4] == b"QFI\xfb":
        return int.from_bytes(head[24:32], "big")
    return None


def add_generated(site: Site, data: Generated, *, name: str, owner: str | None = None,
                  visibility: str = "shared", disk_format: str = "raw", container_format: str = "bare",
                  **properties: str) -> Resource:
    """Put an active image whose bytes are ``data`` (made when downloaded) into ``site``'s Glance, owned
    by ``owner`` (default: the site's admin project); returns the image record as Glance shows it."""
    if visibility not in ("public", "private", "shared", "community"):
        raise ValueError(f"Invalid visibility value: {visibility}")
    if any(not isinstance(v, str) for v in properties.values()) or set(properties) & CORE:
        raise ValueError("properties must be strings and not Glance's own fields")
    glance = site.glance
    now = iso(time.time())
    iid = new_id()
    image: Resource = {
        "id": iid, "name": name, "status": "active", "visibility": visibility, "protected": False,
        "os_hidden": False, "checksum": data.checksum, "os_hash_algo": "sha512", "os_hash_value": data.os_hash_value,
        "owner": owner or site.keystone.admin_project, "size": data.size,
        "virtual_size": _virtual_size(disk_format, data.head(), data.size), "min_ram": 0, "min_disk": 0,
        "disk_format": disk_format, "container_format": container_format, "created_at": now, "updated_at": now,
        "tags": [], "_seq": len(glance.images), **properties,
    }
    glance.images[iid] = image
    glance.data[iid] = data
    return {k: v for k, v in image.items() if not k.startswith("_")}


@router.route("GET", "/v2/images/{id}/file")
async def download(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    if image["status"] == "deactivated" and not ctx.is_admin:
        return error(ctx, 403, "The requested image has been deactivated. Image data download is forbidden.")
    data = ctx.site.glance.data.get(image["id"])
    if data is None:
        return empty(204)
    if isinstance(data, Digest):
        return error(ctx, 410, f"Image {image['id']} was stored digest-only (the simulator runs with "
                               "digest_only_images): its size and hashes are known, its data was not kept.")
    cut = ctx.faults.image_download_cut_after if ctx.faults is not None else 0
    size = len(data) if isinstance(data, bytes) else data.size
    response = web.StreamResponse(status=200, headers={
        "Content-Type": "application/octet-stream", "Content-MD5": image["checksum"],
        "Content-Length": str(size), "x-openstack-request-id": request_id()})
    await response.prepare(ctx.request)
    bps = ctx.faults.slow_image_bps if ctx.faults is not None else 0
    sent = 0
    async for chunk in throttled(pieces(data, piece_size(bps)), bps):
        await response.write(chunk)
        sent += len(chunk)
        if cut and sent >= cut:  # the source dies mid-transfer: the connection closes short of Content-Length
            if ctx.request.transport is not None:
                ctx.request.transport.close()
            return response
    await response.write_eof()
    return response


@router.route("PUT,DELETE", "/v2/images/{id}/tags/{tag}")
async def tag(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    if not _can_write(ctx, image):
        return error(ctx, 403, "You are not permitted to modify tags on this image.")
    name = ctx.params["tag"]
    if ctx.method == "PUT":
        if name not in image["tags"]:
            image["tags"].append(name)
    elif name in image["tags"]:
        image["tags"].remove(name)
    else:
        return error(ctx, 404, f"Tag {name} not found")
    image["updated_at"] = iso(time.time())
    return empty(204)


@router.route("GET,POST", "/v2/images/{id}/members")
async def image_members(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    members: dict[str, Resource] = image.setdefault("_members", {})
    if ctx.method == "GET":
        return json_response({"members": list(members.values()), "schema": "/v2/schemas/members"})
    if not _can_write(ctx, image):
        return error(ctx, 403, "You are not permitted to create image members for the image.")
    if image["visibility"] != "shared":
        return error(ctx, 403, "Only shared images have members.")
    body = await ctx.json()
    member = body.get("member") if isinstance(body, dict) else None
    if not isinstance(member, str) or not member:
        return error(ctx, 400, "Member to be added not specified")
    if member in members:
        return error(ctx, 409, f"The target member {member} is already associated with image {image['id']}.")
    now = iso(time.time())
    members[member] = {"member_id": member, "image_id": image["id"], "status": "pending", "created_at": now,
                       "updated_at": now, "schema": "/v2/schemas/member"}
    return json_response(members[member])


@router.route("POST", "/v2/images/{id}/actions/{action}")
async def image_action(ctx: Ctx) -> web.StreamResponse:
    image = _find(ctx)
    if image is None:
        return _gone(ctx)
    action = ctx.params["action"]
    if action not in ("deactivate", "reactivate"):
        return error(ctx, 404, "The resource could not be found.")
    if not ctx.is_admin:
        return error(ctx, 403, f"You are not authorized to complete {action}_image action.")
    allowed = {"deactivate": ("active", "deactivated"), "reactivate": ("active", "deactivated")}[action]
    if image["status"] not in allowed:
        return error(ctx, 403, f"Not allowed to {action} image in status '{image['status']}'")
    image["status"] = "deactivated" if action == "deactivate" else "active"
    return empty(204)


@router.route("GET", "/v2/schemas/image")
@router.route("GET", "/v2/schemas/images")
async def schemas(ctx: Ctx) -> web.StreamResponse:
    return json_response({"name": "image", "properties": {k: {"type": ["null", "string"]} for k in sorted(CORE)},
                          "additionalProperties": {"type": "string"}, "links": []})


@router.route("GET", "/v2/info/import")
async def import_info(ctx: Ctx) -> web.StreamResponse:
    return json_response({"import-methods": {"description": "Import methods available.", "type": "array",
                                             "value": ["glance-direct", "web-download", "copy-image"]}})


@router.route("GET", "/v2/info/stores")
async def stores_info(ctx: Ctx) -> web.StreamResponse:
    return error(ctx, 404, "Multi backend is not supported at this site.")
