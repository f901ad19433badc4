"""Simulated Cinder (block-storage v3, /v3/{project_id}/...): volumes, snapshots, volume types,
quota sets with usage, limits and availability zones, with microversions and cinder's error bodies.

Why it exists: Skyfleet reports and enforces storage quotas per site; this module answers
openstacksdk's block-storage calls with cinder's shapes, including its 413 over-quota errors.
"""

from __future__ import annotations

import operator
import re
import time
import uuid
from typing import Any

from aiohttp import web

from .httpkit import (
    Ctx,
    Router,
    empty,
    int_param,
    json_response,
    next_href,
    page_size,
    paginate,
    redirect,
    webob_error,
)
from .state import Resource, iso, parse_iso

router = Router()
MIN_VERSION, MAX_VERSION = (3, 0), (3, 71)
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 501: "notImplemented",
               503: "serviceUnavailable"}
QUOTA_DEFAULTS = {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
                  "groups": 10, "per_volume_gigabytes": -1, "volumes___DEFAULT__": -1, "snapshots___DEFAULT__": -1,
                  "gigabytes___DEFAULT__": -1}
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
_VERSION = re.compile(r"^([1-9]\d*)\.(\d+)$")
DEFAULT_TYPE = "__DEFAULT__"
DEFAULT_TYPE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "skyfleet-sim-default-volume-type"))


def error(ctx: Ctx, status: int, message: str) -> web.Response:
    name = FAULT_NAMES.get(status, "computeFault")
    body: Resource = {"code": status, "message": message}
    if status == 413:
        body["retryAfter"] = "0"
    return json_response({name: body}, status)


def _version_entry(ctx: Ctx) -> Resource:
    return {"id": "v3.0", "status": "CURRENT", "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}", "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{ctx.base}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}]}


def _versions(ctx: Ctx, status: int) -> web.Response:
    return json_response({"versions": [_version_entry(ctx)]}, status,
                         {"OpenStack-API-Version": "volume 3.0", "Vary": "OpenStack-API-Version"})


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    """The root's version list is public; /v3 and /v3/ sit behind keystonemiddleware (see `handle`)."""
    if ctx.method == "GET" and ctx.path == "/":
        return _versions(ctx, 300)
    return None


def _versioned_root(ctx: Ctx) -> web.StreamResponse | None:
    """What cinder answers an authenticated client at /v3 (302 to /v3/), /v3/ (the version list) and
    /v3/{project_id} (webob's 404): keystoneauth's discovery walks exactly these."""
    if ctx.path == "/v3":
        return redirect(f"{ctx.base}/v3/")
    if ctx.path == "/v3/" and ctx.method == "GET":
        return _versions(ctx, 200)
    if ctx.path.count("/") == 2 or (ctx.path.count("/") == 3 and ctx.path.endswith("/")):
        return webob_error(ctx, 404, "The resource could not be found.")
    return None


def _negotiate(ctx: Ctx) -> web.Response | None:
    wanted = None
    for value in ctx.request.headers.getall("OpenStack-API-Version", []):
        for item in value.split(","):
            service, _, version = item.strip().partition(" ")
            if service.lower() in ("volume", "block-storage"):
                wanted = version.strip()
    ctx.version = MIN_VERSION
    if wanted is None:
        return None
    if wanted.lower() == "latest":
        ctx.version = MAX_VERSION
        return None
    found = _VERSION.match(wanted)
    if found is None:
        return error(ctx, 400, f"API Version String {wanted} is of invalid format. Must be of format "
                               "MajorNum.MinorNum.")
    asked = (int(found.group(1)), int(found.group(2)))
    if not MIN_VERSION <= asked <= MAX_VERSION:
        return error(ctx, 406, f"Version {wanted} is not supported by the API. Minimum is 3.0 and maximum is "
                               "%d.%d." % MAX_VERSION)
    ctx.version = asked
    return None


async def handle(ctx: Ctx) -> web.StreamResponse:
    root = _versioned_root(ctx)
    if root is not None:
        return root
    response: web.StreamResponse | None = _negotiate(ctx)
    if response is None:
        parts = ctx.path.split("/", 3)  # ['', 'v3', project, rest]; /v2 is the 3.0 API
        if parts[1:2] == ["v2"]:
            ctx.version = MIN_VERSION
        if len(parts) < 4 or parts[1] not in ("v2", "v3"):
            response = error(ctx, 404, "The resource could not be found.")
        else:
            handler, params, known = router.match(ctx.method, "/" + parts[3])
            if handler is None and not known:  # no such URL: the router's plain webob 404
                return webob_error(ctx, 404, "The resource could not be found.")
            if handler is None:
                response = error(ctx, 405, "The resource could not be found.")
            else:
                ctx.params = {**params, "url_project": parts[2]}
                response = await handler(ctx)
    assert response is not None
    response.headers["OpenStack-API-Version"] = f"volume {ctx.version[0]}.{ctx.version[1]}"
    response.headers["Vary"] = "OpenStack-API-Version"
    return response


# --- usage and quotas ------------------------------------------------------------------------------

def _limits(ctx: Ctx, project: str) -> dict[str, int]:
    return {**QUOTA_DEFAULTS, **ctx.site.cinder.quotas.get(project, {})}


def _usage(ctx: Ctx, project: str) -> dict[str, int]:
    cinder = ctx.site.cinder
    volumes = [v for v in cinder.volumes.values() if v["_project"] == project]
    snaps = [s for s in cinder.snapshots.values() if s["_project"] == project]
    result = {k: 0 for k in QUOTA_DEFAULTS}
    result.update(volumes=len(volumes), snapshots=len(snaps),
                  gigabytes=sum(v["size"] for v in volumes) + sum(s["size"] for s in snaps))
    result.update(volumes___DEFAULT__=result["volumes"], snapshots___DEFAULT__=result["snapshots"],
                  gigabytes___DEFAULT__=result["gigabytes"])
    return result


def _over_quota(ctx: Ctx, project: str, *, volumes: int = 0, snapshots: int = 0, size: int = 0) -> web.Response | None:
    limits, used = _limits(ctx, project), _usage(ctx, project)
    forced = ctx.faults is not None and ctx.faults.quota_exceeded
    if volumes and (forced or 0 <= limits["volumes"] < used["volumes"] + volumes):
        return error(ctx, 413, f"VolumeLimitExceeded: Maximum number of volumes allowed ({limits['volumes']}) "
                               "exceeded for quota 'volumes'.")
    if snapshots and (forced or 0 <= limits["snapshots"] < used["snapshots"] + snapshots):
        return error(ctx, 413, f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({limits['snapshots']}) "
                               "exceeded")
    if 0 <= limits["gigabytes"] < used["gigabytes"] + size:
        return error(ctx, 413, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                               f"gigabytes quota. Requested {size}G, quota is {limits['gigabytes']}G and "
                               f"{used['gigabytes']}G has been consumed.")
    return None


def _quota_project(ctx: Ctx) -> str | None:
    project = ctx.params["project"]
    return project if ctx.is_admin or project == ctx.project_id else None


@router.route("GET", "/os-quota-sets/{project}")
@router.route("GET", "/os-quota-sets/{project}/defaults")
async def show_quota(ctx: Ctx) -> web.StreamResponse:
    project = _quota_project(ctx)
    if project is None:
        return error(ctx, 403, "Policy doesn't allow volume_extension:quotas:show to be performed.")
    defaults = ctx.path.rstrip("/").endswith("/defaults")
    limits = dict(QUOTA_DEFAULTS) if defaults else _limits(ctx, project)
    body: Resource = {"id": project}
    if not defaults and ctx.flag("usage"):
        used = _usage(ctx, project)
        body.update({k: {"limit": v, "in_use": used[k], "reserved": 0, "allocated": 0} for k, v in limits.items()})
    else:
        body.update(limits)
    return json_response({"quota_set": body})


@router.route("PUT,DELETE", "/os-quota-sets/{project}")
async def update_quota(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return error(ctx, 403, "Policy doesn't allow volume_extension:quotas:update to be performed.")
    project = ctx.params["project"]
    if ctx.method == "DELETE":
        ctx.site.cinder.quotas.pop(project, None)
        return empty(200)
    body = await ctx.body("quota_set")
    changes = {}
    for key, value in body.items():
        if key in ("tenant_id", "id"):
            continue
        if key not in QUOTA_DEFAULTS:
            return error(ctx, 400, f"Bad key(s) in quota set: {key}")
        try:
            changes[key] = int(value)
        except (TypeError, ValueError):
            return error(ctx, 400, f"Quota value {value} for {key} must be an integer.")
    ctx.site.cinder.quotas.setdefault(project, {}).update(changes)
    return json_response({"quota_set": _limits(ctx, project)})


@router.route("GET", "/limits")
async def limits(ctx: Ctx) -> web.StreamResponse:
    lim, used = _limits(ctx, ctx.project_id), _usage(ctx, ctx.project_id)
    return json_response({"limits": {"rate": [], "absolute": {
        "totalSnapshotsUsed": used["snapshots"], "maxTotalBackups": lim["backups"],
        "maxTotalVolumeGigabytes": lim["gigabytes"], "maxTotalSnapshots": lim["snapshots"],
        "maxTotalBackupGigabytes": lim["backup_gigabytes"], "totalBackupGigabytesUsed": 0,
        "maxTotalVolumes": lim["volumes"], "totalVolumesUsed": used["volumes"], "totalBackupsUsed": 0,
        "totalGigabytesUsed": used["gigabytes"]}}})


@router.route("GET", "/os-availability-zone")
async def availability_zones(ctx: Ctx) -> web.StreamResponse:
    return json_response({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})


@router.route("GET", "/os-services")
async def services(ctx: Ctx) -> web.StreamResponse:
    """cinder's service list (the health audit reads it); cluster from 3.7, backend_state from 3.49."""
    if not ctx.is_admin:
        return error(ctx, 403, "Policy doesn't allow volume_extension:services:index to be performed.")
    updated = iso(float(int(time.time())), micro=True, zulu=False)
    found = []
    for binary, host in (("cinder-scheduler", "volume-0"), ("cinder-volume", "volume-0@fake")):
        if ctx.query.get("binary", binary) != binary or ctx.query.get("host", host) != host:
            continue
        view: Resource = {"binary": binary, "host": host, "zone": "nova", "status": "enabled", "state": "up",
                          "updated_at": updated}
        if ctx.at_least(3, 49) and binary == "cinder-volume":
            view["backend_state"] = "up"
        if ctx.at_least(3, 7):
            view["cluster"] = None
        view["disabled_reason"] = None
        if binary == "cinder-volume":
            view.update(replication_status="disabled", active_backend_id=None, frozen=False)
        found.append(view)
    return json_response({"services": found})


@router.route("GET", "/types")
@router.route("GET", "/types/default")
@router.route("GET", "/types/{id}")
async def volume_types(ctx: Ctx) -> web.StreamResponse:
    vtype = {"id": DEFAULT_TYPE_ID, "name": DEFAULT_TYPE, "description": "Default Volume Type", "is_public": True,
             "os-volume-type-access:is_public": True, "extra_specs": {}, "qos_specs_id": None}
    wanted = ctx.params.get("id")
    if wanted is not None and wanted not in (DEFAULT_TYPE_ID, DEFAULT_TYPE):
        return error(ctx, 404, f"Volume type {wanted} could not be found.")
    if wanted is not None or ctx.path.rstrip("/").endswith("/default"):
        return json_response({"volume_type": vtype})
    return json_response({"volume_types": [vtype]})


# --- volumes and snapshots -------------------------------------------------------------------------

def _tick(item: Resource, done: str = "available") -> Resource:
    if item["status"] == "creating" and time.time() >= item["_ready_at"]:
        item["status"] = done
        item["updated_at"] = iso(item["_ready_at"], micro=True, zulu=False)
    return item


def _links(ctx: Ctx, kind: str, ident: str) -> list[dict[str, str]]:
    return [{"href": f"{ctx.base}/v3/{ctx.params['url_project']}/{kind}/{ident}", "rel": "self"},
            {"href": f"{ctx.base}/{ctx.params['url_project']}/{kind}/{ident}", "rel": "bookmark"}]


def volume_view(ctx: Ctx, vol: Resource, *, detail: bool = True) -> Resource:
    _tick(vol)
    view: Resource = {"id": vol["id"], "name": vol["name"], "links": _links(ctx, "volumes", vol["id"])}
    if not detail:
        return view
    view.update({k: v for k, v in vol.items() if not k.startswith("_")})
    view["links"] = _links(ctx, "volumes", vol["id"])
    if ctx.is_admin:
        view.update({"os-vol-tenant-attr:tenant_id": vol["_project"], "os-vol-host-attr:host": "volume-0@fake#fake",
                     "os-vol-mig-status-attr:migstat": None, "os-vol-mig-status-attr:name_id": None})
    for minimum, key, value in (((3, 13), "group_id", None), ((3, 21), "provider_id", None),
                                ((3, 48), "service_uuid", None), ((3, 48), "shared_targets", False),
                                ((3, 61), "cluster_name", None), ((3, 63), "volume_type_id", DEFAULT_TYPE_ID),
                                ((3, 65), "consumes_quota", True)):
        if ctx.at_least(*minimum):
            view[key] = value
    return view


# Time comparison filters of volume listings: ``updated_at=gte:<ISO 8601>``. Documented from 3.60; real cinder
# applies them from 3.31 on (its general filtering) and drops them below.
TIME_OPERATORS: dict[str, Any] = {"gt": operator.gt, "gte": operator.ge, "eq": operator.eq, "neq": operator.ne,
                                  "lt": operator.lt, "lte": operator.le}


def _scoped(ctx: Ctx, items: list[Resource]) -> list[Resource]:
    q = ctx.query
    all_tenants = ctx.is_admin and q.get("all_tenants", "0").lower() not in ("0", "false", "")
    project = q.get("project_id") if ctx.is_admin and q.get("project_id") else None
    if not all_tenants and project is None:
        project = ctx.project_id
    return [i for i in items if project is None or i["_project"] == project]


# Query keys cinder takes out before filtering.
NOT_FILTERS = frozenset({"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants",
                         "project_id"})
# Filter keys that name a column of cinder's models: an admin may filter on any of them.
MODEL_FILTERS = {
    "volumes": frozenset({"id", "name", "display_name", "status", "bootable", "availability_zone", "size", "metadata",
                          "created_at", "updated_at", "migration_status", "group_id", "host", "user_id",
                          "volume_type_id", "multiattach", "attach_status", "consumes_quota", "use_quota",
                          "cluster_name", "glance_metadata"}),
    "snapshots": frozenset({"id", "name", "display_name", "status", "volume_id", "metadata", "created_at",
                            "updated_at", "consumes_quota", "use_quota", "user_id", "group_snapshot_id"}),
}
# What cinder's shipped resource_filters.json lets a non-admin filter on.
USER_FILTERS = {
    "volumes": frozenset({"name", "status", "metadata", "bootable", "migration_status", "availability_zone",
                          "group_id", "size", "created_at", "updated_at", "consumes_quota"}),
    "snapshots": frozenset({"name", "status", "volume_id", "metadata", "availability_zone", "consumes_quota"}),
}
RESOURCE_FILTER = (3, 31)  # from here cinder's general filtering checks the keys (and applies time filters)


def _unknown_filters(ctx: Ctx, kind: str) -> tuple[list[str], web.Response | None]:
    """The filter keys cinder cannot apply, and the 400 a non-admin gets for them (3.31+).

    For an admin cinder checks nothing up front; its database layer then finds a key that is not a
    column and answers no rows at all (200, empty list) -- ``changes-since`` included, which is Nova's.
    A non-admin's unknown keys are dropped before 3.31 and refused from 3.31 on."""
    keys = [k for k in dict.fromkeys(ctx.query) if k not in NOT_FILTERS]
    if ctx.is_admin:
        return [k for k in keys if k not in MODEL_FILTERS[kind]], None
    bad = [k for k in keys if k not in USER_FILTERS[kind]]
    if bad and ctx.at_least(*RESOURCE_FILTER):
        return bad, error(ctx, 400, f"Invalid filters {','.join(bad)} are found in query options.")
    return [], None


def _listing(ctx: Ctx, kind: str, items: list[Resource], render: Any) -> web.Response:
    q = ctx.query
    unknown, refused = _unknown_filters(ctx, kind)
    if refused is not None:
        return refused
    items = [] if unknown else [_tick(i) for i in _scoped(ctx, items)]
    for key in ("name", "status", "volume_id", "bootable"):
        if key in q and key in MODEL_FILTERS[kind]:
            items = [i for i in items if str(i.get(key)) == q[key]]
    for key in ("created_at", "updated_at"):
        if key in q and kind == "volumes" and ctx.at_least(*RESOURCE_FILTER):
            op, _, text = q[key].partition(":")
            if op not in TIME_OPERATORS:
                op, text = "eq", q[key]
            since = parse_iso(text)
            if since is None or op not in TIME_OPERATORS:
                return error(ctx, 400, f"Invalid input received: Invalid {key} filter value {q[key]!r}.")
            items = [i for i in items if i.get(key) and TIME_OPERATORS[op](parse_iso(i[key]) or 0.0, since)]
    items.sort(key=lambda i: (i["created_at"], i["id"]), reverse=q.get("sort_dir", "desc") == "desc")
    if "limit" in q and not q["limit"].lstrip("-").isdigit():
        return error(ctx, 400, "limit param must be an integer")
    limit = page_size(ctx, int_param(q.get("limit")))
    page, last, found = paginate(items, limit, q.get("marker"))
    if not found:
        return error(ctx, 400, f"marker [{q.get('marker')}] not found")
    detail = ctx.path.rstrip("/").endswith("/detail")
    body: Resource = {kind: [render(ctx, i, detail=detail) for i in page]}
    if last is not None:
        url = f"{ctx.base}/v3/{ctx.params['url_project']}/{kind}{'/detail' if detail else ''}"
        body[f"{kind}_links"] = [{"rel": "next", "href": next_href(ctx, url, last, limit)}]
    return json_response(body)


@router.route("GET", "/volumes")
@router.route("GET", "/volumes/detail")
async def list_volumes(ctx: Ctx) -> web.StreamResponse:
    return _listing(ctx, "volumes", list(ctx.site.cinder.volumes.values()), volume_view)


@router.route("POST", "/volumes")
async def create_volume(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body("volume")
    cinder = ctx.site.cinder
    size = body.get("size")
    snapshot = cinder.snapshots.get(body["snapshot_id"]) if body.get("snapshot_id") else None
    if body.get("snapshot_id") and snapshot is None:
        return error(ctx, 404, f"Snapshot {body['snapshot_id']} could not be found.")
    if size is None and snapshot is not None:
        size = snapshot["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return error(ctx, 400, f"Invalid input for field/attribute size. Value: {size}.")
    if body.get("volume_type") not in (None, DEFAULT_TYPE, DEFAULT_TYPE_ID):
        return error(ctx, 404, f"Volume type with name {body['volume_type']} could not be found.")
    over = _over_quota(ctx, ctx.project_id, volumes=1, size=size)
    if over is not None:
        return over
    now = time.time()
    vid = str(uuid.uuid4())
    vol: Resource = {
        "id": vid, "name": body.get("name"), "description": body.get("description"), "status": "creating",
        "size": size, "availability_zone": body.get("availability_zone") or "nova",
        "created_at": iso(now, micro=True, zulu=False), "updated_at": None, "attachments": [],
        "bootable": "true" if body.get("imageRef") else "false", "encrypted": False, "multiattach": False,
        "volume_type": DEFAULT_TYPE, "snapshot_id": body.get("snapshot_id"), "source_volid": body.get("source_volid"),
        "metadata": {str(k): str(v) for k, v in (body.get("metadata") or {}).items()}, "user_id": ctx.user_id,
        "replication_status": None, "consistencygroup_id": None, "migration_status": None,
        "_project": ctx.project_id, "_ready_at": now + ctx.site.boot_delay,
    }
    cinder.volumes[vid] = vol
    return json_response({"volume": volume_view(ctx, vol)}, 202)


def _find(ctx: Ctx, table: dict[str, Resource]) -> Resource | None:
    item = table.get(ctx.params["id"])
    return item if item is not None and (ctx.is_admin or item["_project"] == ctx.project_id) else None


@router.route("GET,PUT,DELETE", "/volumes/{id}")
async def volume_item(ctx: Ctx) -> web.StreamResponse:
    cinder = ctx.site.cinder
    vol = _find(ctx, cinder.volumes)
    if vol is None:
        return error(ctx, 404, f"Volume {ctx.params['id']} could not be found.")
    _tick(vol)
    if ctx.method == "GET":
        return json_response({"volume": volume_view(ctx, vol)})
    if ctx.method == "PUT":
        body = await ctx.body("volume")
        for key in ("name", "description", "metadata"):
            if key in body:
                vol[key] = body[key]
        vol["updated_at"] = iso(time.time(), micro=True, zulu=False)
        return json_response({"volume": volume_view(ctx, vol)})
    if vol["status"] not in DELETABLE or vol["attachments"] or \
            any(s["volume_id"] == vol["id"] for s in cinder.snapshots.values()):
        return error(ctx, 400, "Invalid volume: Volume status must be available or error or error_restoring or "
                               "error_extending or error_managing and must not be migrating, attached, belong to a "
                               "group, have snapshots, awaiting a transfer, or be disassociated from snapshots after "
                               "volume transfer.")
    del cinder.volumes[vol["id"]]
    return empty(202)


@router.route("POST", "/volumes/{id}/action")
async def volume_action(ctx: Ctx) -> web.StreamResponse:
    vol = _find(ctx, ctx.site.cinder.volumes)
    if vol is None:
        return error(ctx, 404, f"Volume {ctx.params['id']} could not be found.")
    body = await ctx.json()
    action = next(iter(body), "") if isinstance(body, dict) else ""
    args = body.get(action) or {}
    if action == "os-extend":
        new_size = int(args.get("new_size", 0))
        if new_size <= vol["size"]:
            return error(ctx, 400, f"Invalid input received: New size for extend must be greater than current size. "
                                   f"(current: {vol['size']}, extended: {new_size}).")
        over = _over_quota(ctx, vol["_project"], size=new_size - vol["size"])
        if over is not None:
            return over
        vol["size"] = new_size
    elif action == "os-reset_status":
        if not ctx.is_admin:
            return error(ctx, 403, "Policy doesn't allow volume_extension:volume_admin_actions:reset_status to be "
                                   "performed.")
        vol["status"] = args.get("status", vol["status"])
    elif action == "os-set_bootable":
        vol["bootable"] = "true" if args.get("bootable") else "false"
        return empty(200)
    else:
        return error(ctx, 400, f"There is no such action: {action}")
    return empty(202)


def snapshot_view(ctx: Ctx, snap: Resource, *, detail: bool = True) -> Resource:
    _tick(snap)
    view = {k: v for k, v in snap.items() if not k.startswith("_")}
    if not detail:
        return {k: view[k] for k in ("id", "name", "status", "size", "volume_id", "created_at", "updated_at",
                                     "description", "metadata")}
    view["os-extended-snapshot-attributes:progress"] = "100%" if snap["status"] == "available" else "0%"
    if ctx.is_admin:
        view["os-extended-snapshot-attributes:project_id"] = snap["_project"]
    if ctx.at_least(3, 14):
        view["group_snapshot_id"] = None
    if ctx.at_least(3, 41):
        view["user_id"] = snap["_user"]
    if ctx.at_least(3, 65):
        view["consumes_quota"] = True
    return view


@router.route("GET", "/snapshots")
@router.route("GET", "/snapshots/detail")
async def list_snapshots(ctx: Ctx) -> web.StreamResponse:
    return _listing(ctx, "snapshots", list(ctx.site.cinder.snapshots.values()), snapshot_view)


@router.route("POST", "/snapshots")
async def create_snapshot(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body("snapshot")
    cinder = ctx.site.cinder
    vol = cinder.volumes.get(str(body.get("volume_id", "")))
    if vol is None or not (ctx.is_admin or vol["_project"] == ctx.project_id):
        return error(ctx, 404, f"Volume {body.get('volume_id')} could not be found.")
    _tick(vol)
    force = str(body.get("force", False)).lower() in ("true", "1")
    if vol["status"] != "available" and not (force and vol["status"] == "in-use"):
        return error(ctx, 400, f"Invalid volume: Volume {vol['id']} status must be available, but current status "
                               f"is: {vol['status']}.")
    over = _over_quota(ctx, vol["_project"], snapshots=1, size=vol["size"])
    if over is not None:
        return over
    now = time.time()
    sid = str(uuid.uuid4())
    snap: Resource = {"id": sid, "name": body.get("name"), "description": body.get("description"),
                      "status": "creating", "size": vol["size"], "volume_id": vol["id"],
                      "created_at": iso(now, micro=True, zulu=False), "updated_at": None,
                      "metadata": dict(body.get("metadata") or {}), "_project": vol["_project"],
                      "_user": ctx.user_id, "_ready_at": now + ctx.site.boot_delay}
    cinder.snapshots[sid] = snap
    return json_response({"snapshot": snapshot_view(ctx, snap)}, 202)


@router.route("GET,PUT,DELETE", "/snapshots/{id}")
async def snapshot_item(ctx: Ctx) -> web.StreamResponse:
    snap = _find(ctx, ctx.site.cinder.snapshots)
    if snap is None:
        return error(ctx, 404, f"Snapshot {ctx.params['id']} could not be found.")
    if ctx.method == "DELETE":
        del ctx.site.cinder.snapshots[snap["id"]]
        return empty(202)
    if ctx.method == "PUT":
        body = await ctx.body("snapshot")
        for key in ("name", "description"):
            if key in body:
                snap[key] = body[key]
    return json_response({"snapshot": snapshot_view(ctx, snap)})
