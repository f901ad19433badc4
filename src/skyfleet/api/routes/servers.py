"""/v1/servers: boot servers where the caller chooses (a site, then an AZ) or where placement says,
spilling over to the next candidate when a site refuses; follow, delete, start, stop, reboot them.

A boot runs as the caller's project on each site (see the ``server.boot`` kind). ``dry_run`` answers
the ranked candidates with their scores and the reasons each excluded site was excluded, and boots
nothing. An ``Idempotency-Key`` header makes a retried request find the servers it made.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.placement import service as placement
from skyfleet.domains.placement.schemas import BootRequest
from skyfleet.domains.servers import flow
from skyfleet.domains.servers import service as servers
from skyfleet.domains.sync import service as sync
from skyfleet.domains.sync.models import SyncResource
from skyfleet.errors import Conflict, Invalid, NotFound
from skyfleet.reconcile import server_logs

router = APIRouter(prefix="/v1/servers", tags=["servers"], dependencies=CLEAN_URL)


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["start", "stop", "reboot"] | None = None  # checked after the server is found (a foreign
    # server is 404 whatever the body)


def _declared_image(session: Any, ref: str, caller: sync.Caller) -> SyncResource | None:
    try:
        return sync.get(session, kind="image", ref=ref, caller=caller)
    except NotFound:
        return None


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses={
    200: {"description": "dry_run: the ranked plan, nothing booted; or an Idempotency-Key's earlier servers"}})
def create(body: BootRequest, runtime: RuntimeDep, principal: PrincipalDep, response: Response,
           dry_run: Annotated[bool, Query(description="rank the candidates and boot nothing")] = False,
           idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> dict[str, Any]:
    caller, now = caller_of(principal, runtime.settings.home_domain_name), utcnow()
    with transaction(runtime.factory) as session:
        if idempotency_key and not dry_run:
            earlier = servers.by_key(session, project_id=caller.project_id or "", key=idempotency_key)
            if earlier:
                response.status_code = status.HTTP_200_OK
                return {"servers": [servers.view(s) for s in earlier], "replayed": True}
        plan = placement.plan(session, project_id=caller.project_id, is_admin=caller.is_admin, request=body, now=now)
        if dry_run:
            response.status_code = status.HTTP_200_OK
            return {"plan": plan.model_dump(mode="json")}
        if not plan.assignments:
            why = "; ".join(f"{e.site_name}: {', '.join(e.reasons)}" for e in plan.excluded[:20]) or "no site matches"
            why = f"{plan.problem}; {why}" if plan.problem else why
            raise Conflict(f"no site can take {body.count} server(s) of flavor {body.flavor!r} with image "
                           f"{body.image!r} ({why})")
        image = _declared_image(session, body.image, caller)
        made = servers.create(session, caller=caller, request=body, plan=plan, image=image,
                              idempotency_key=idempotency_key, now=now)
        out = {"servers": [servers.view(s) for s in made], "plan": plan.model_dump(mode="json")}
    runtime.wake()
    return out


@router.get("")
def list_(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          marker: str | None = None) -> dict[str, Any]:
    with read_only(runtime.factory) as session:
        rows, next_marker = servers.list_servers(session, caller=caller_of(principal), limit=limit, marker=marker)
        return {"servers": [servers.view(s) for s in rows], "next_marker": next_marker}


@router.get("/{server_id}")
def show(server_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    with read_only(runtime.factory) as session:
        return servers.view(servers.get(session, ref=server_id, caller=caller_of(principal)))


@router.get("/{server_id}/console")
def console(server_id: str, runtime: RuntimeDep, principal: PrincipalDep,
            length: Annotated[int | None, Query(ge=1, le=10_000, description="last lines only")] = None,
            ) -> dict[str, Any]:
    """The server's console output, read live from its site."""
    return _live(runtime, principal, server_id, "console", length)


@router.get("/{server_id}/actions")
def actions(server_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """The server's instance action history, read live from its site (newest first)."""
    return _live(runtime, principal, server_id, "actions", None)


def _live(runtime: Any, principal: Any, server_id: str, what: str, length: int | None) -> dict[str, Any]:
    with read_only(runtime.factory) as session:
        server = servers.get(session, ref=server_id, caller=caller_of(principal))
        site_id, remote_id = server.site_id, server.remote_id
    found = server_logs.read(runtime.factory, runtime.box, site_id=site_id, remote_id=remote_id, what=what,
                             length=length, timeout=runtime.settings.site_timeout)
    return {"server_id": server_id, **found}


@router.delete("/{server_id}", status_code=status.HTTP_202_ACCEPTED)
def delete(server_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    now = utcnow()
    with transaction(runtime.factory) as session:
        server = servers.get(session, ref=server_id, caller=caller_of(principal), for_update=True)
        if server.remote_id is None and server.status in ("failed", "pending", "waiting-image"):
            server.status, server.updated_at = "deleted", now  # nothing on any site to delete
        else:
            flow.manage(session, server, action="delete", now=now)
        out = servers.view(server)
    runtime.wake()
    return out


@router.post("/{server_id}/action", status_code=status.HTTP_202_ACCEPTED)
def action(server_id: str, body: ActionBody, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    now = utcnow()
    with transaction(runtime.factory) as session:
        server = servers.get(session, ref=server_id, caller=caller_of(principal), for_update=True)
        if body.action is None:
            raise Invalid("action: give one of start, stop, reboot")
        if server.status != "active":
            raise Invalid(f"server {server.name!r} is {server.status}; only an active server takes {body.action}")
        operation = flow.manage(session, server, action={"start": "os-start", "stop": "os-stop"}.get(
            body.action, body.action), now=now)
        out = {**servers.view(server), "operation_id": operation.id}
    runtime.wake()
    return out
