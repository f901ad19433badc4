"""``server.manage``: delete, start, stop or reboot a server Skyfleet booted, on its site.

Passed through to Nova with the site credential (a fleet-wide admin call by server id: the server is
the tenant's, and the request was already allowed for the tenant by the access decision). A delete
of a server that is already gone succeeds, and so do a stop of a server already ``SHUTOFF`` and a start
of one already ``ACTIVE``: nothing is sent (Nova answers those with a 409, which would be retried).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from skyfleet.drivers.openstack import computeapi
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register


class ManagePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str
    remote_id: str
    action: Literal["delete", "os-start", "os-stop", "reboot"]


# The state each action leads to: asked for in that state already, the action is done.
ALREADY = {"os-stop": "SHUTOFF", "os-start": "ACTIVE"}


def observe(ctx: SiteContext, p: ManagePayload) -> dict[str, Any]:
    server = computeapi.get_server(ctx.connection(), p.remote_id)
    return {"found": server is not None, "status": None if server is None else server.get("status")}


def diff(p: ManagePayload, seen: dict[str, Any]) -> Plan | None:
    if not seen["found"] or seen.get("status") == ALREADY.get(p.action):
        return None
    return {"do": p.action}


def apply(ctx: SiteContext, p: ManagePayload, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if plan["do"] == "delete":
        computeapi.delete_server(conn, p.remote_id)
    else:
        computeapi.server_action(conn, p.remote_id, plan["do"])
    return {"action": plan["do"], "remote_id": p.remote_id}


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    return {"action": "none", "gone": not seen["found"]}


KIND = register(TaskKind(name="server.manage", description="Delete, start, stop or reboot a server.",
                         payload=ManagePayload, observe=observe, diff=diff, apply=apply, summary=summary))
