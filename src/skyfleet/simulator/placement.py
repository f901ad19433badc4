"""Simulated Placement (1.x): version discovery, microversions, and the read side a management tool uses --
resource providers (list with filters, show), their inventories, usages, traits, aggregates and allocations,
project usages and resource classes -- with placement's `{"errors": [...]}` bodies.

Why it exists: from compute microversion 2.88 on, nova no longer reports capacity; Skyfleet reads it from
placement. The one provider per site is the site's simulated compute node: its uuid is the hypervisor id,
its inventory matches the hypervisor figures and its usages are the servers nova holds. Writes are nova's
business and are not simulated (501).
"""

from __future__ import annotations

import re
import time
import uuid
from email.utils import formatdate
from typing import Any

from aiohttp import web

from .httpkit import Ctx, Router, json_response, request_id
from .nova import DISK_GB, MEMORY_MB, VCPUS
from .state import Resource

router = Router()
MIN_VERSION, MAX_VERSION = (1, 0), (1, 39)
HOSTNAME = "compute-0"  # the simulated hypervisor's hostname (nova's os-hypervisors says the same)
RESERVED_MEMORY_MB = 512  # nova's reserved_host_memory_mb default, also counted by os-hypervisors
RATIOS = {"VCPU": 4.0, "MEMORY_MB": 1.0, "DISK_GB": 1.0}  # nova's initial_*_allocation_ratio defaults
TRAITS = ["COMPUTE_IMAGE_TYPE_RAW", "COMPUTE_DEVICE_TAGGING", "COMPUTE_VOLUME_ATTACH_WITH_TAG", "OWNER_NOVA",
          "COMPUTE_VOLUME_MULTI_ATTACH", "COMPUTE_NODE", "COMPUTE_TRUSTED_CERTS",
          "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG", "COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_VOLUME_EXTEND"]
RESOURCE_CLASSES = ["VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE",
                    "NUMA_THREAD", "NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD",
                    "NET_BW_EGR_KILOBIT_PER_SEC", "NET_BW_IGR_KILOBIT_PER_SEC", "PCPU", "MEM_ENCRYPTION_CONTEXT",
                    "FPGA", "PGPU", "NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
                    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC"]
EXPLANATIONS = {
    400: ("Bad Request", "The server could not comply with the request since it is either malformed or otherwise "
                         "incorrect."),
    401: ("Unauthorized", "This server could not verify that you are authorized to access the document you "
                          "requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method specified is not allowed for this resource."),
    406: ("Not Acceptable", "The resource could not be generated that was acceptable to your browser (content of "
                            "type application/json. "),
    500: ("Internal Server Error", "The server has either erred or is incapable of performing the requested "
                                   "operation."),
    501: ("Not Implemented", "The request method is not implemented by this server."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a later time."),
}
# Methods real placement allows on each route (for 405 and its Allow header); only GET is simulated.
ALLOWED = {"/resource_providers": "GET, POST", "/resource_providers/{uuid}": "GET, PUT, DELETE",
           "/resource_providers/{uuid}/inventories": "GET, POST, PUT, DELETE",
           "/resource_providers/{uuid}/inventories/{rc}": "GET, PUT, DELETE",
           "/resource_providers/{uuid}/usages": "GET", "/resource_providers/{uuid}/traits": "GET, PUT, DELETE",
           "/resource_providers/{uuid}/aggregates": "GET, PUT", "/resource_providers/{uuid}/allocations": "GET",
           "/usages": "GET", "/resource_classes": "GET, POST", "/traits": "GET"}
_VERSION = re.compile(r"^([1-9]\d*)\.(\d+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_STARTED = formatdate(time.time(), usegmt=True)


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def error(ctx: Ctx, status: int, message: str, *, extra: Resource | None = None,
          headers: dict[str, str] | None = None) -> web.Response:
    title, explanation = EXPLANATIONS.get(status, ("Error", ""))
    rid = request_id()
    body: Resource = {"status": status, "title": title, "detail": f"{explanation}\n\n {message}  ",
                      "request_id": rid, **(extra or {})}
    hdrs = {"x-openstack-request-id": rid, "openstack-api-version": f"placement {_text(max(ctx.version, MIN_VERSION))}",
            **(headers or {})}
    return json_response({"errors": [body]}, status, hdrs)


def _doc_headers(version: tuple[int, int]) -> dict[str, str]:
    return {"openstack-api-version": f"placement {_text(version)}", "vary": "openstack-api-version"}


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    if ctx.method == "GET" and ctx.path == "/":
        doc = {"id": "v1.0", "max_version": _text(MAX_VERSION), "min_version": _text(MIN_VERSION),
               "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}
        return json_response({"versions": [doc]}, 200, _doc_headers(MIN_VERSION))
    return None


def _negotiate(ctx: Ctx) -> web.Response | None:
    wanted = None
    for value in ctx.request.headers.getall("OpenStack-API-Version", []):
        for item in value.split(","):
            service, _, version = item.strip().partition(" ")
            if service.lower() == "placement":
                wanted = version.strip()
    ctx.version = MIN_VERSION
    if wanted is None:
        return None
    if wanted.lower() == "latest":
        ctx.version = MAX_VERSION
        return None
    found = _VERSION.match(wanted)
    if found is None:
        return error(ctx, 400, f"Invalid microversion: invalid version string: {wanted}")
    asked = (int(found.group(1)), int(found.group(2)))
    if not MIN_VERSION <= asked <= MAX_VERSION:
        return error(ctx, 406, f"Invalid microversion: Unacceptable version header: {wanted}",
                     extra={"max_version": _text(MAX_VERSION), "min_version": _text(MIN_VERSION)})
    ctx.version = asked
    return None


def _template(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("resource_providers", "usages", "resource_classes", "traits"):
        return None
    if parts[0] != "resource_providers":
        return f"/{parts[0]}" if len(parts) == 1 else None
    names = ["/resource_providers", "/{uuid}", "/" + (parts[2] if len(parts) > 2 else ""), "/{rc}"]
    template = "".join(names[: len(parts)])
    return template if template in ALLOWED else None


async def handle(ctx: Ctx) -> web.StreamResponse:
    refused = _negotiate(ctx)
    if refused is not None:
        return refused
    handler, params, _known = router.match(ctx.method, ctx.path)
    if handler is None:
        template = _template(ctx.path)
        if template is None:
            return error(ctx, 404, "")
        allowed = ALLOWED[template]
        if ctx.method in allowed.split(", "):
            return error(ctx, 501, "The simulator's placement is read-only: providers belong to nova.")
        return error(ctx, 405, "", headers={"allow": allowed})
    ctx.params = params
    if not ctx.is_admin:
        return error(ctx, 403, f"Policy does not allow {_rule(ctx.path)} to be performed.")
    response = await handler(ctx)
    response.headers.update(_doc_headers(ctx.version))
    if ctx.at_least(1, 15) and response.status == 200:
        response.headers["Last-Modified"] = _STARTED
        response.headers["Cache-Control"] = "no-cache"
    return response


def _rule(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[0] != "resource_providers":
        return f"placement:{parts[0]}" + (":list" if parts[0] != "usages" else "")
    if len(parts) == 1:
        return "placement:resource_providers:list"
    if len(parts) == 2:
        return "placement:resource_providers:show"
    sub = parts[2]
    if sub == "usages":
        return "placement:resource_providers:usages"
    return f"placement:resource_providers:{sub}:{'show' if len(parts) > 3 else 'list'}"


# --- the provider ----------------------------------------------------------------------------------

def _servers(ctx: Ctx) -> list[Resource]:
    return list(ctx.site.nova.servers.values())


def _generation(ctx: Ctx) -> int:
    nova = ctx.site.nova
    return 1 + len(nova.servers) + 2 * len(nova.deleted)  # every allocation change bumps it


def _provider(ctx: Ctx) -> Resource:
    rp = ctx.site.nova.hypervisor_id
    prefix = ctx.base.split("/", 3)[3] if ctx.base.count("/") >= 3 else ""
    href = f"/{prefix}/resource_providers/{rp}"
    rels = ["self", "inventories", "usages"]
    if ctx.at_least(1, 1):
        rels.append("aggregates")
    if ctx.at_least(1, 6):
        rels.append("traits")
    if ctx.at_least(1, 11):
        rels.append("allocations")
    view: Resource = {"uuid": rp, "name": HOSTNAME, "generation": _generation(ctx),
                      "links": [{"rel": r, "href": href if r == "self" else f"{href}/{r}"} for r in rels]}
    if ctx.at_least(1, 14):
        view.update(parent_provider_uuid=None, root_provider_uuid=rp)
    return view


def _inventories(ctx: Ctx) -> dict[str, Resource]:
    totals = {"VCPU": VCPUS, "MEMORY_MB": MEMORY_MB, "DISK_GB": DISK_GB}
    return {rc: {"total": total, "reserved": RESERVED_MEMORY_MB if rc == "MEMORY_MB" else 0, "min_unit": 1,
                 "max_unit": total, "step_size": 1, "allocation_ratio": RATIOS[rc]} for rc, total in totals.items()}


def _usage_of(servers: list[Resource]) -> dict[str, int]:
    return {"VCPU": sum(s["_vcpus"] for s in servers), "MEMORY_MB": sum(s["_ram"] for s in servers),
            "DISK_GB": sum(s["_flavor"]["disk"] for s in servers)}


def _missing_provider(ctx: Ctx, ident: str, *, twice: bool = False) -> web.Response:
    text = f"No resource provider with uuid {ident} found"
    return error(ctx, 404, f"{text} : {text}" if twice else text)


def _is_ours(ctx: Ctx) -> bool:
    return ctx.params["uuid"] == ctx.site.nova.hypervisor_id


# --- routes ----------------------------------------------------------------------------------------

def _bad_query(ctx: Ctx, message: str) -> web.Response:
    return error(ctx, 400, f"Invalid query string parameters: {message}")


def _filters_match(ctx: Ctx) -> bool | web.Response:
    """Whether the one provider passes the list filters; a 400 response for filters this version lacks."""
    allowed = {"name": (1, 0), "uuid": (1, 0), "member_of": (1, 3), "resources": (1, 4), "in_tree": (1, 14),
               "required": (1, 18)}
    for key in ctx.query:
        if key not in allowed or not ctx.at_least(*allowed[key]):
            return _bad_query(ctx, f"Additional properties are not allowed ('{key}' was unexpected)")
    rp = ctx.site.nova.hypervisor_id
    for key in ("uuid", "in_tree"):
        value = ctx.query.get(key)
        if value is not None and not _UUID.match(value):
            return _bad_query(ctx, f"'{value}' is not a 'uuid'")
        if value is not None and str(uuid.UUID(value)) != rp:
            return False
    if "name" in ctx.query and ctx.query["name"] != HOSTNAME:
        return False
    if "member_of" in ctx.query:
        return False  # the simulated provider is in no aggregate
    if "resources" in ctx.query:
        fits = _fits(ctx, ctx.query["resources"])
        if not isinstance(fits, bool):
            return fits
        if not fits:
            return False
    for trait in (t.strip() for t in ctx.query.get("required", "").split(",") if t.strip()):
        forbidden = trait.startswith("!")
        if forbidden and not ctx.at_least(1, 22):
            return error(ctx, 400, "Invalid query string parameters: Expected 'required' parameter value of "
                                   f"the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {trait}")
        if (trait.lstrip("!") in TRAITS) == forbidden:
            return False
    return True


def _fits(ctx: Ctx, text: str) -> bool | web.Response:
    inventories, used = _inventories(ctx), _usage_of(_servers(ctx))
    for item in text.split(","):
        rc, _, amount = item.partition(":")
        if not amount.isdigit():
            return error(ctx, 400, f"Badly formed resources parameter. Expected resources query string "
                                   f"parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {text}.")
        inv = inventories.get(rc.strip())
        if inv is None:
            return False
        capacity = int((inv["total"] - inv["reserved"]) * inv["allocation_ratio"])
        if int(amount) > inv["max_unit"] or used[rc.strip()] + int(amount) > capacity:
            return False
    return True


@router.route("GET", "/resource_providers")
async def list_providers(ctx: Ctx) -> web.StreamResponse:
    match = _filters_match(ctx)
    if isinstance(match, web.Response):
        return match
    return json_response({"resource_providers": [_provider(ctx)] if match else []})


@router.route("GET", "/resource_providers/{uuid}")
async def show_provider(ctx: Ctx) -> web.StreamResponse:
    if not _is_ours(ctx):
        return _missing_provider(ctx, ctx.params["uuid"])
    return json_response(_provider(ctx))


@router.route("GET", "/resource_providers/{uuid}/inventories")
async def list_inventories(ctx: Ctx) -> web.StreamResponse:
    if not _is_ours(ctx):
        return _missing_provider(ctx, ctx.params["uuid"], twice=True)
    return json_response({"resource_provider_generation": _generation(ctx), "inventories": _inventories(ctx)})


@router.route("GET", "/resource_providers/{uuid}/inventories/{rc}")
async def show_inventory(ctx: Ctx) -> web.StreamResponse:
    if not _is_ours(ctx):
        return _missing_provider(ctx, ctx.params["uuid"], twice=True)
    inv = _inventories(ctx).get(ctx.params["rc"])
    if inv is None:
        return error(ctx, 404, f"No inventory of class {ctx.params['rc']} for {ctx.params['uuid']}")
    return json_response({**inv, "resource_provider_generation": _generation(ctx)})


@router.route("GET", "/resource_providers/{uuid}/usages")
async def provider_usages(ctx: Ctx) -> web.StreamResponse:
    if not _is_ours(ctx):
        return _missing_provider(ctx, ctx.params["uuid"], twice=True)
    return json_response({"resource_provider_generation": _generation(ctx), "usages": _usage_of(_servers(ctx))})


@router.route("GET", "/resource_providers/{uuid}/traits")
@router.route("GET", "/resource_providers/{uuid}/aggregates")
@router.route("GET", "/resource_providers/{uuid}/allocations")
async def provider_detail(ctx: Ctx) -> web.StreamResponse:
    kind = ctx.path.rstrip("/").rsplit("/", 1)[-1]
    if (kind == "traits" and not ctx.at_least(1, 6)) or (kind == "aggregates" and not ctx.at_least(1, 1)):
        return error(ctx, 404, "")
    if not _is_ours(ctx):
        return _missing_provider(ctx, ctx.params["uuid"], twice=True)
    body: Resource
    if kind == "traits":
        body = {"traits": list(TRAITS)}
    elif kind == "aggregates":
        body = {"aggregates": []}
    else:
        body = {"allocations": {s["id"]: {"resources": _usage_of([s])} for s in _servers(ctx)}}
    if kind != "aggregates" or ctx.at_least(1, 19):
        body["resource_provider_generation"] = _generation(ctx)
    return json_response(body)


@router.route("GET", "/usages")
async def project_usages(ctx: Ctx) -> web.StreamResponse:
    if not ctx.at_least(1, 9):
        return error(ctx, 404, "")
    project = ctx.query.get("project_id")
    if not project:
        return _bad_query(ctx, "'project_id' is a required property")
    user = ctx.query.get("user_id")
    mine = [s for s in _servers(ctx) if s["tenant_id"] == project and (not user or s["user_id"] == user)]
    usages: dict[str, Any] = _usage_of(mine) if mine else {}
    return json_response({"usages": usages})


@router.route("GET", "/resource_classes")
async def resource_classes(ctx: Ctx) -> web.StreamResponse:
    if not ctx.at_least(1, 2):
        return error(ctx, 404, "")
    prefix = ctx.base.split("/", 3)[3] if ctx.base.count("/") >= 3 else ""
    return json_response({"resource_classes": [
        {"name": rc, "links": [{"rel": "self", "href": f"/{prefix}/resource_classes/{rc}"}]}
        for rc in RESOURCE_CLASSES]})


@router.route("GET", "/traits")
async def traits(ctx: Ctx) -> web.StreamResponse:
    if not ctx.at_least(1, 6):
        return error(ctx, 404, "")
    return json_response({"traits": sorted(TRAITS)})
