"""Simulated Nova server logs: the console output (``os-getConsoleOutput``) and the instance action
history (``os-instance-actions``) of a server.

Why it exists: Skyfleet shows a tenant its servers' console logs and action history from every site;
this module speaks Nova's shapes for both. The console is generated from the server's life (boot
lines, then one line per action), and every server action is recorded with its request id.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .httpkit import Ctx, Router, json_response, request_id
from .state import Resource, iso

router = Router()


def record(ctx: Ctx, server: Resource, action: str) -> None:
    """Remember an action on the server (newest last), as nova's instance_actions table does."""
    server.setdefault("_actions", []).append({
        "action": action, "instance_uuid": server["id"], "request_id": request_id(), "user_id": ctx.user_id,
        "project_id": ctx.project_id, "start_time": iso(time.time()), "message": None,
        "updated_at": iso(time.time())})


def console(server: Resource, length: Any) -> str:
    lines = [f"[    0.000000] Linux version 6.1.0 ({server['_hostname']})",
             "[    1.204411] cloud-init: starting", f"{server['_hostname']} login:"]
    lines += [f"[ {i + 2:9.6f}] nova: {a['action']}" for i, a in enumerate(server.get("_actions", []))]
    count = int(length) if isinstance(length, int | str) and str(length).lstrip("-").isdigit() else -1
    return "\n".join(lines[-count:] if count >= 0 else lines) + "\n"


def console_response(server: Resource, body: dict[str, Any]) -> web.Response:
    return json_response({"output": console(server, (body.get("os-getConsoleOutput") or {}).get("length", -1))})


def find(ctx: Ctx) -> Resource | None:
    server = ctx.site.nova.servers.get(ctx.params["id"])
    if server is None or not (ctx.is_admin or server["tenant_id"] == ctx.project_id):
        return None
    return server


@router.route("GET", "/v2.1/servers/{id}/os-instance-actions")
async def instance_actions(ctx: Ctx) -> web.StreamResponse:
    server = find(ctx)
    if server is None:
        return json_response({"itemNotFound": {"code": 404, "message": f"Instance {ctx.params['id']} could not be "
                                                                         "found."}}, 404)
    actions = list(reversed(server.get("_actions", [])))
    return json_response({"instanceActions": actions})
