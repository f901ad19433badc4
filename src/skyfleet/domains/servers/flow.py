"""A boot's life: try the best site, and when it refuses, the next; wait for a lazy image copy first.

Why it exists: a boot is a chain of attempts decided one after the other, each started by the
outcome of the one before, with nobody watching: the continuation of a ``server.boot`` operation
(``server.attempt``) records the site's answer and, on a refusal, starts the next candidate (an
explicit site only when ``allow_spill``). When the chosen site still needs a copy of a declared
image, the lazy copy is asked for and the server waits (``waiting-image``); the fold of the image's
converge operation (``image_folded``) then starts the boot, or counts a failed copy as the site's
refusal. Every attempt stays on the server's row with the site's error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.events import service as events
from skyfleet.domains.images import service as images
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations import stages
from skyfleet.domains.operations.models import SUCCEEDED, Operation, Task
from skyfleet.domains.servers.models import ACTIVE, BOOTING, DELETED, DELETING, FAILED, WAITING_IMAGE, Server
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.domains.sync.service import placed_sites
from skyfleet.errors import Conflict

STAGE = "server.attempt"
KIND = "server.boot"


def start(session: Session, server: Server, *, now: datetime) -> bool:
    """Start the next attempt; False when no candidate is left (the server has then failed)."""
    tried = {a["site_id"] for a in server.attempts}
    left = [c for c in server.candidates if c["site_id"] not in tried]
    if server.explicit and server.attempts:
        left = []
    if not left:
        _fail(session, server, now)
        return False
    candidate = left[0]
    server.site_id, server.site_name, server.updated_at = candidate["site_id"], candidate["site_name"], now
    if server.image_resource_id is not None:
        state = _image_state(session, server, candidate, now)
        if state == "waiting":
            server.status = WAITING_IMAGE
            return True
        if state == "refused":
            return start(session, server, now=now)
    return _boot(session, server, candidate, now)


def _image_state(session: Session, server: Server, candidate: dict[str, Any], now: datetime) -> str:
    """``ready`` when the declared image is on the candidate site; ``waiting`` once its copy there is
    asked for; ``refused`` (recorded) when it cannot be copied there."""
    resource = session.get(SyncResource, server.image_resource_id)
    if resource is None:
        return "ready"  # forgotten since: the boot finds (or misses) an image by name
    binding = session.get(SyncBinding, (resource.id, candidate["site_id"]))
    if binding is not None and binding.status == "in-sync" and binding.generation == resource.generation:
        return "ready"
    site = session.get(Site, candidate["site_id"])
    try:
        if site is not None and resource.options.get("mode") == "lazy":
            images.activate(session, resource=resource, site=site, placed=placed_sites(session, resource.placement),
                            now=now)
        conv.converge(session, resource, now=now, user_id=server.user_id)  # the booting user's work
    except Conflict as exc:
        _refused(session, server, candidate, f"image {resource.name!r} cannot be copied there: {exc}", now)
        return "refused"
    return "waiting"


def _boot(session: Session, server: Server, candidate: dict[str, Any], now: datetime) -> bool:
    payload = {**server.request["boot"], "server_id": server.id, "name": server.name,
               "availability_zone": candidate.get("availability_zone"),
               **conv.owner_refs("image", server.owner)}
    operation = operations.submit(session, kind=KIND, targets=[operations.SiteRef(candidate["site_id"],
                                                                                  candidate["site_name"])],
                                  payload=payload, user_id=server.user_id, project_id=server.project_id, now=now,
                                  continuation=STAGE)
    operation.payload = {**payload, "server_id": server.id}
    server.status, server.operation_id = BOOTING, operation.id
    return True


def _refused(session: Session, server: Server, candidate: dict[str, Any], error: str, now: datetime) -> None:
    server.attempts = [*server.attempts, {"site_id": candidate["site_id"], "site_name": candidate["site_name"],
                                          "error": error, "at": now.isoformat()}]
    server.last_error, server.updated_at = error, now
    events.record(session, kind="server.refused", severity="warning", site_id=candidate["site_id"],
                  site_name=candidate["site_name"], project_id=server.project_id, at=now,
                  message=f"server {server.name!r} refused by {candidate['site_name']}: {error}",
                  details={"server_id": server.id})


def _fail(session: Session, server: Server, now: datetime) -> None:
    server.status, server.updated_at = FAILED, now
    tried = "; ".join(f"{a['site_name']}: {a['error']}" for a in server.attempts) or "no candidate site"
    server.last_error = f"no site took the server ({tried})"[:4000]
    events.record(session, kind="server.failed", severity="error", site_id=None, site_name=None,
                  project_id=server.project_id, at=now, message=f"server {server.name!r} was not booted",
                  details={"server_id": server.id})


def _attempt_settled(session: Session, operation: Operation, _final: str, now: datetime) -> bool:
    server = session.get(Server, (operation.payload or {}).get("server_id"), with_for_update=True)
    if server is None or server.operation_id != operation.id or server.status != BOOTING:
        return False
    task = session.scalars(select(Task).where(Task.operation_id == operation.id)).first()
    candidate = {"site_id": server.site_id, "site_name": server.site_name}
    if task is not None and task.state == SUCCEEDED:
        result = task.result or {}
        server.status, server.remote_id = ACTIVE, result.get("remote_id")
        server.availability_zone, server.updated_at, server.last_error = result.get("availability_zone"), now, None
        events.record(session, kind="server.active", severity="info", site_id=server.site_id,
                      site_name=server.site_name, project_id=server.project_id, at=now,
                      message=f"server {server.name!r} is ACTIVE in {server.site_name}",
                      details={"server_id": server.id, "remote_id": server.remote_id})
        return False
    _refused(session, server, candidate, (task.last_error if task is not None else None) or "the attempt failed",
             now)
    return start(session, server, now=now)


def image_folded(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding], now: datetime) -> bool:
    """After an image's copies settled: boot the servers that waited for it, or move them on."""
    waiting = list(session.scalars(select(Server).where(Server.image_resource_id == resource.id,
                                                        Server.status == WAITING_IMAGE).with_for_update()))
    spawned = False
    for server in waiting:
        binding = bindings.get(server.site_id or "")
        candidate = next((c for c in server.candidates if c["site_id"] == server.site_id),
                         {"site_id": server.site_id, "site_name": server.site_name})
        if binding is not None and binding.status == "in-sync" and binding.generation == resource.generation:
            spawned = _boot(session, server, candidate, now) or spawned
        elif binding is not None and binding.status == "failed":
            _refused(session, server, candidate, f"the image copy failed: {binding.last_error}", now)
            spawned = start(session, server, now=now) or spawned
    return spawned


stages.register(STAGE, _attempt_settled)
conv.IMAGE_FOLDED.append(image_folded)


MANAGED = "server.managed"


def manage(session: Session, server: Server, *, action: str, now: datetime) -> Operation:
    """Pass a delete, start, stop or reboot through to the server's site."""
    if server.remote_id is None or server.site_id is None:
        raise Conflict(f"server {server.name!r} is {server.status}: it has no server on a site yet")
    operation = operations.submit(session, kind="server.manage", targets=[operations.SiteRef(
        server.site_id, server.site_name or server.site_id)], payload={
        "server_id": server.id, "remote_id": server.remote_id, "action": action}, user_id=server.user_id,
        project_id=server.project_id, now=now, continuation=MANAGED)
    if action == "delete":
        server.status = DELETING
    server.operation_id, server.updated_at = operation.id, now
    return operation


def _managed(session: Session, operation: Operation, _final: str, now: datetime) -> bool:
    server = session.get(Server, (operation.payload or {}).get("server_id"), with_for_update=True)
    if server is None or server.operation_id != operation.id:
        return False
    task = session.scalars(select(Task).where(Task.operation_id == operation.id)).first()
    ok = task is not None and task.state == SUCCEEDED
    if (operation.payload or {}).get("action") == "delete":
        server.status = DELETED if ok else ACTIVE
    server.last_error = None if ok else (task.last_error if task is not None else "failed")
    server.updated_at = now
    return False


stages.register(MANAGED, _managed)
