"""Simulated Nova (compute v2.1): version discovery, microversion negotiation, quota sets, limits,
availability zones and hypervisors; servers, flavors and keypairs live in sibling modules.

Why it exists: it is the compute service's front door -- every compute request passes through
`handle`, which negotiates the microversion and echoes it the way nova does.
"""

from __future__ import annotations

import re
import time
import uuid

from aiohttp import web

from . import nova_flavors, nova_logs, nova_servers
from .httpkit import Ctx, Router, json_response, webob_error
from .nova_base import (
    MAX_VERSION,
    MIN_VERSION,
    error,
    policy_denied,
    quota_fields,
    quota_limits,
    usage,
    version_text,
)
from .state import Resource, iso

router = Router()
ROUTERS = (nova_servers.router, nova_flavors.router, nova_logs.router, router)
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
VCPUS, MEMORY_MB, DISK_GB = 64, 262144, 2048

__all__ = ["discovery", "error", "handle"]


def _version_entry(ctx: Ctx, vid: str) -> Resource:
    root = ctx.base
    if vid == "v2.0":
        return {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
                "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": f"{root}/v2/"}]}
    return {"id": "v2.1", "status": "CURRENT", "version": version_text(MAX_VERSION),
            "min_version": version_text(MIN_VERSION), "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{root}/v2.1/"}]}


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    """Nova's version documents need no token: the root list, and /v2 and /v2.1 (with or without "/")."""
    if ctx.method != "GET":
        return None
    if ctx.path == "/":
        return json_response({"versions": [_version_entry(ctx, "v2.0"), _version_entry(ctx, "v2.1")]})
    vid = {"/v2.1": "v2.1", "/v2.1/": "v2.1", "/v2": "v2.0", "/v2/": "v2.0"}.get(ctx.path)
    if vid is None:
        return None
    entry = _version_entry(ctx, vid)
    entry["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
    media = "2.1" if vid == "v2.1" else "2"
    entry["media-types"] = [{"base": "application/json",
                             "type": f"application/vnd.openstack.compute+json;version={media}"}]
    if vid == "v2.0":
        return json_response({"version": entry})
    return json_response({"version": entry}, 200, {
        "OpenStack-API-Version": f"compute {version_text(MIN_VERSION)}",
        "X-OpenStack-Nova-API-Version": version_text(MIN_VERSION),
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"})


def negotiate(ctx: Ctx) -> web.Response | None:
    headers = ctx.request.headers
    wanted = None
    for value in headers.getall("OpenStack-API-Version", []):
        for item in value.split(","):
            service, _, version = item.strip().partition(" ")
            if service.lower() == "compute":
                wanted = version.strip()
    if wanted is None:
        wanted = headers.get("X-OpenStack-Nova-API-Version")
    if wanted is None:
        ctx.version = MIN_VERSION
        return None
    if wanted.lower() == "latest":
        ctx.version = MAX_VERSION
        return None
    found = _VERSION.match(wanted)
    if found is None:
        ctx.version = MIN_VERSION
        return error(ctx, 400, f"API Version String {wanted} is of invalid format. Must be of format "
                               "MajorNum.MinorNum.")
    asked = (int(found.group(1)), int(found.group(2)))
    if not MIN_VERSION <= asked <= MAX_VERSION:
        ctx.version = MIN_VERSION
        return error(ctx, 406, f"Version {wanted} is not supported by the API. Minimum is "
                               f"{version_text(MIN_VERSION)} and maximum is {version_text(MAX_VERSION)}.")
    ctx.version = asked
    return None


async def handle(ctx: Ctx) -> web.StreamResponse:
    response: web.StreamResponse | None = negotiate(ctx)
    if response is None:
        response = await _route(ctx)
        if response is None:  # no such URL: the router's plain webob 404, before any microversion handling
            return webob_error(ctx, 404, "The resource could not be found.")
    text = version_text(ctx.version)
    response.headers["OpenStack-API-Version"] = f"compute {text}"
    response.headers["X-OpenStack-Nova-API-Version"] = text
    response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    response.headers["x-compute-request-id"] = response.headers.get("x-openstack-request-id", "")
    return response


async def _route(ctx: Ctx) -> web.StreamResponse | None:
    if not ctx.path.startswith("/v2.1/"):
        return None
    known = False
    for table in ROUTERS:
        handler, params, seen = table.match(ctx.method, ctx.path)
        if handler is not None:
            ctx.params = params
            return await handler(ctx)
        known = known or seen
    if known:
        return error(ctx, 405, "The method specified is not allowed for this resource.")
    return None


# --- quotas and limits -----------------------------------------------------------------------------

def _quota_target(ctx: Ctx) -> str | None:
    project = ctx.params["project"]
    return project if ctx.is_admin or project == ctx.project_id else None


@router.route("GET", "/v2.1/os-quota-sets/{project}")
@router.route("GET", "/v2.1/os-quota-sets/{project}/detail")
@router.route("GET", "/v2.1/os-quota-sets/{project}/defaults")
async def show_quota(ctx: Ctx) -> web.StreamResponse:
    project = _quota_target(ctx)
    if project is None:
        return policy_denied(ctx, "os_compute_api:os-quota-sets:show")
    fields = quota_fields(ctx)
    if ctx.path.rstrip("/").endswith("/defaults"):
        limits = {k: v for k, v in fields.items()}
    else:
        limits = {k: quota_limits(ctx.site, project).get(k, v) for k, v in fields.items()}
    body: Resource = {"id": project}
    if ctx.path.rstrip("/").endswith("/detail"):
        used = usage(ctx.site, project, ctx.user_id)
        body.update({k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0} for k, v in limits.items()})
    else:
        body.update(limits)
    return json_response({"quota_set": body})


@router.route("PUT,DELETE", "/v2.1/os-quota-sets/{project}")
async def update_quota(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-quota-sets:update")
    project = ctx.params["project"]
    if ctx.method == "DELETE":
        ctx.site.nova.quotas.pop(project, None)
        return web.Response(status=202)
    body = await ctx.body("quota_set")
    fields = quota_fields(ctx)
    changes: dict[str, int] = {}
    for key, value in body.items():
        if key == "force":
            continue
        if key not in fields:
            return error(ctx, 400, f"Invalid input for field/attribute quota_set. Value: {body}. Additional "
                                   f"properties are not allowed ('{key}' was unexpected)")
        try:
            changes[key] = int(value)
        except (TypeError, ValueError):
            return error(ctx, 400, f"Invalid input for field/attribute {key}. Value: {value}.")
        if changes[key] < -1:
            return error(ctx, 400, f"Invalid input for field/attribute {key}. Value: {value}.")
    ctx.site.nova.quotas.setdefault(project, {}).update(changes)
    limits = quota_limits(ctx.site, project)
    return json_response({"quota_set": {k: limits.get(k, v) for k, v in fields.items()}})


@router.route("GET", "/v2.1/limits")
async def limits(ctx: Ctx) -> web.StreamResponse:
    project = ctx.query.get("tenant_id") if ctx.is_admin and ctx.query.get("tenant_id") else ctx.project_id
    lim = quota_limits(ctx.site, project)
    used = usage(ctx.site, project)
    absolute: Resource = {
        "maxServerMeta": lim["metadata_items"], "maxTotalKeypairs": lim["key_pairs"],
        "maxServerGroups": lim["server_groups"], "maxServerGroupMembers": lim["server_group_members"],
        "maxTotalCores": lim["cores"], "maxTotalInstances": lim["instances"], "maxTotalRAMSize": lim["ram"],
        "totalCoresUsed": used["cores"], "totalInstancesUsed": used["instances"], "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": 0,
    }
    if not ctx.at_least(2, 57):
        absolute.update(maxPersonality=lim["injected_files"], maxPersonalitySize=lim["injected_file_content_bytes"])
    if not ctx.at_least(2, 39):
        absolute["maxImageMeta"] = lim["metadata_items"]
    if not ctx.at_least(2, 36):
        absolute.update(maxSecurityGroups=-1, maxSecurityGroupRules=-1, maxTotalFloatingIps=-1,
                        totalSecurityGroupsUsed=0, totalFloatingIpsUsed=0)
    return json_response({"limits": {"rate": [], "absolute": absolute}})


# --- availability zones and hypervisors ------------------------------------------------------------

@router.route("GET", "/v2.1/os-availability-zone")
@router.route("GET", "/v2.1/os-availability-zone/detail")
async def availability_zones(ctx: Ctx) -> web.StreamResponse:
    if not ctx.path.rstrip("/").endswith("/detail"):
        return json_response({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True},
                                                        "hosts": None}]})
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-availability-zone:detail")
    service = {"available": True, "active": True, "updated_at": "2025-01-01T00:00:00.000000"}
    return json_response({"availabilityZoneInfo": [
        {"zoneName": "internal", "zoneState": {"available": True},
         "hosts": {"controller-0": {"nova-conductor": service, "nova-scheduler": service}}},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": {"compute-0": {"nova-compute": service}}},
    ]})


def _hypervisor(ctx: Ctx, *, detail: bool) -> Resource:
    nova = ctx.site.nova
    hid: object = nova.hypervisor_id if ctx.at_least(2, 53) else 1
    view: Resource = {"id": hid, "hypervisor_hostname": "compute-0", "state": "up", "status": "enabled"}
    if not detail:
        return view
    servers = list(nova.servers.values())
    vcpus_used = sum(s["_vcpus"] for s in servers)
    ram_used = sum(s["_ram"] for s in servers) + 512
    disk_used = sum(s["_flavor"]["disk"] for s in servers)
    view.update({"hypervisor_type": "fake", "hypervisor_version": 1000, "host_ip": "127.0.0.1",
                 "service": {"host": "compute-0", "id": nova.hypervisor_id if ctx.at_least(2, 53) else 1,
                             "disabled_reason": None}})
    if ctx.at_least(2, 88):
        view["uptime"] = None
        return view
    view.update({"vcpus": VCPUS, "memory_mb": MEMORY_MB, "local_gb": DISK_GB, "vcpus_used": vcpus_used,
                 "memory_mb_used": ram_used, "local_gb_used": disk_used, "free_ram_mb": MEMORY_MB - ram_used,
                 "free_disk_gb": DISK_GB - disk_used, "current_workload": 0, "running_vms": len(servers),
                 "disk_available_least": DISK_GB - disk_used, "cpu_info": "{}"})
    return view


@router.route("GET", "/v2.1/os-hypervisors")
@router.route("GET", "/v2.1/os-hypervisors/detail")
async def hypervisors(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-hypervisors:list")
    detail = ctx.path.rstrip("/").endswith("/detail")
    return json_response({"hypervisors": [_hypervisor(ctx, detail=detail)]})


@router.route("GET", "/v2.1/os-hypervisors/statistics")
async def hypervisor_statistics(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-hypervisors:statistics")
    if ctx.at_least(2, 88):
        return error(ctx, 404, "The resource could not be found.")
    hyp = _hypervisor(ctx, detail=True)
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb",
            "free_disk_gb", "current_workload", "running_vms", "disk_available_least")
    return json_response({"hypervisor_statistics": {"count": 1, **{k: hyp[k] for k in keys}}})


@router.route("GET", "/v2.1/os-hypervisors/{id}")
async def hypervisor_item(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-hypervisors:show")
    hyp = _hypervisor(ctx, detail=True)
    if ctx.params["id"] != str(hyp["id"]):
        return error(ctx, 404, f"Hypervisor with ID {ctx.params['id']} could not be found.")
    return json_response({"hypervisor": hyp})


SERVICES = (("nova-scheduler", "controller-0", "internal"), ("nova-conductor", "controller-0", "internal"),
            ("nova-compute", "compute-0", "nova"))


@router.route("GET", "/v2.1/os-services")
async def services(ctx: Ctx) -> web.StreamResponse:
    """nova's service list (the health audit reads it): ids are UUIDs from 2.53, forced_down from 2.11."""
    if not ctx.is_admin:
        return policy_denied(ctx, "os_compute_api:os-services:list")
    updated = iso(float(int(time.time())), micro=True, zulu=False)
    binary, host = ctx.query.get("binary"), ctx.query.get("host")
    found = []
    for index, (name, where, zone) in enumerate(SERVICES, start=2):
        if (binary and binary != name) or (host and host != where):
            continue
        sid: object = str(uuid.uuid5(uuid.UUID(ctx.site.nova.hypervisor_id), name)) if ctx.at_least(2, 53) else index
        view: Resource = {"binary": name, "host": where, "id": sid, "zone": zone, "status": "enabled",
                          "state": "up", "updated_at": updated, "disabled_reason": None}
        if ctx.at_least(2, 11):
            view["forced_down"] = False
        found.append(view)
    return json_response({"services": found})
