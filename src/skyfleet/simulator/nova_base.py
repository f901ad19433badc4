"""Shared pieces of the simulated Nova: error bodies, microversion range, quotas and usage.

Why it exists: servers, flavors, keypairs and the quota/limits endpoints all answer errors in nova's
fault shape and count the same usage; keeping that here lets each nova module stay small.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .httpkit import Ctx, json_response
from .state import Resource, Site

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 100)
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}

QUOTA_DEFAULTS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "metadata_items": 128,
    "server_groups": 10, "server_group_members": 10, "injected_files": 5,
    "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
}
LEGACY_QUOTAS: dict[str, int] = {  # shown before microversion 2.36
    "fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1,
}


def error(ctx: Ctx, status: int, message: str) -> web.Response:
    name = FAULT_NAMES.get(status, "computeFault")
    response = json_response({name: {"code": status, "message": message}}, status)
    response.headers["Content-Type"] = "application/json; charset=UTF-8"  # webob spells it so
    return response


def not_found(ctx: Ctx, message: str) -> web.Response:
    return error(ctx, 404, message)


def policy_denied(ctx: Ctx, rule: str) -> web.Response:
    return error(ctx, 403, f"Policy doesn't allow {rule} to be performed.")


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def quota_limits(site: Site, project_id: str) -> dict[str, int]:
    return {**QUOTA_DEFAULTS, **site.nova.quotas.get(project_id, {})}


def usage(site: Site, project_id: str, user_id: str | None = None) -> dict[str, int]:
    servers = [s for s in site.nova.servers.values() if s["tenant_id"] == project_id]
    used = {key: 0 for key in QUOTA_DEFAULTS}
    used["instances"] = len(servers)
    used["cores"] = sum(s["_vcpus"] for s in servers)
    used["ram"] = sum(s["_ram"] for s in servers)
    if user_id is not None:
        used["key_pairs"] = sum(1 for (uid, _) in site.nova.keypairs if uid == user_id)
    return used


def check_quota(ctx: Ctx, project_id: str, wanted: dict[str, int]) -> web.Response | None:
    """nova's 403 for a create that would exceed the project's quota (or the quota_exceeded fault)."""
    limits = quota_limits(ctx.site, project_id)
    used = usage(ctx.site, project_id)
    forced = ctx.faults is not None and ctx.faults.quota_exceeded
    overs = [k for k, n in wanted.items() if forced or (limits[k] >= 0 and used[k] + n > limits[k])]
    if not overs:
        return None
    names = ", ".join(overs)
    req = ", ".join(str(wanted[k]) for k in overs)
    use = ", ".join(str(used[k]) for k in overs)
    allowed = ", ".join(str(limits[k]) for k in overs)
    return error(ctx, 403, f"Quota exceeded for {names}: Requested {req}, but already used {use} of {allowed} {names}")


def quota_fields(ctx: Ctx) -> dict[str, int]:
    """The quota keys visible at the request's microversion."""
    keys = dict(QUOTA_DEFAULTS)
    if not ctx.at_least(2, 36):
        keys.update(LEGACY_QUOTAS)
    if ctx.at_least(2, 57):
        for gone in ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes"):
            keys.pop(gone)
    return keys


def flavor_link(ctx: Ctx, flavor_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{ctx.base}/v2.1/flavors/{flavor_id}"},
            {"rel": "bookmark", "href": f"{ctx.base}/flavors/{flavor_id}"}]


def visible_flavor(ctx: Ctx, flavor: Resource) -> bool:
    return bool(ctx.is_admin or flavor["os-flavor-access:is_public"] or ctx.project_id in flavor["_access"])


def as_int(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid input for field/attribute {field}. Value: {value}.") from None
    return number
