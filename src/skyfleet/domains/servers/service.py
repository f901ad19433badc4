"""Servers booted through Skyfleet: record a boot request as one row per server, list and show them.

Keyword-only functions over an explicit session; the caller commits. ``create`` turns a placement
plan into rows (each with its ranked candidates: its assigned site first, then the others) and starts
each one's first attempt (see ``flow``). An ``Idempotency-Key`` names a request: the same key from
the same project finds the rows it made instead of booting again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.pagination import find_marker, text_marker
from skyfleet.domains.placement.schemas import BootRequest, PlacementPlan
from skyfleet.domains.servers import flow
from skyfleet.domains.servers.models import PENDING, Server
from skyfleet.domains.sync.models import SyncResource
from skyfleet.domains.sync.service import Caller
from skyfleet.errors import NotFound


def create(session: Session, *, caller: Caller, request: BootRequest, plan: PlacementPlan,
           image: SyncResource | None, idempotency_key: str | None, now: datetime) -> list[Server]:
    ranked = [{"site_id": c.site_id, "site_name": c.site_name, "availability_zone": c.availability_zone,
               "image": c.image} for c in plan.candidates]
    boot = {"flavor": request.flavor, "image": {"name": image.name if image is not None else request.image,
                                                "resource_id": image.id if image is not None else None},
            "networks": request.networks, "keypair": request.keypair, "security_groups": request.security_groups,
            "user_data": request.user_data, "metadata": request.metadata}
    explicit = request.placement.site is not None and not request.placement.allow_spill
    made = []
    for index, site_id in enumerate(plan.assignments):
        first = [c for c in ranked if c["site_id"] == site_id]
        name = request.name if request.count == 1 else f"{request.name}-{index + 1}"
        server = Server(project_id=caller.project_id or "", user_id=caller.user_id, name=name, owner=caller.owner(),
                        request={"boot": boot, "placement": request.placement.model_dump(exclude_none=True)},
                        candidates=first + [c for c in ranked if c["site_id"] != site_id], attempts=[],
                        explicit=explicit, status=PENDING, image_resource_id=image.id if image is not None else None,
                        idempotency_key=idempotency_key, batch_index=index, created_at=now, updated_at=now)
        session.add(server)
        session.flush()
        flow.start(session, server, now=now)
        made.append(server)
    return made


def by_key(session: Session, *, project_id: str, key: str) -> list[Server]:
    return list(session.scalars(select(Server).where(Server.project_id == project_id,
                                                     Server.idempotency_key == key).order_by(Server.batch_index)))


def get(session: Session, *, ref: str, caller: Caller, for_update: bool = False) -> Server:
    query = select(Server).where(Server.id == ref)
    if not caller.is_admin:
        query = query.where(Server.project_id == (caller.project_id or "-"))
    if for_update:
        query = query.with_for_update()
    server = session.scalars(query).first()
    if server is None:
        raise NotFound(f"no server {ref!r}")
    return server


def list_servers(session: Session, *, caller: Caller, limit: int,
                 marker: str | None) -> tuple[list[Server], str | None]:
    query = select(Server)
    if not caller.is_admin:
        query = query.where(Server.project_id == (caller.project_id or "-"))
    ref = text_marker(marker)
    if ref:
        find_marker(session, query.with_only_columns(Server.id).where(Server.id == ref), ref, "server")
        query = query.where(Server.id > ref)
    rows = list(session.scalars(query.order_by(Server.id).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def view(server: Server) -> dict[str, Any]:
    """The server as the API shows it: where it is, and every attempt with the site's answer."""
    return {"id": server.id, "name": server.name, "project_id": server.project_id or None, "status": server.status,
            "site": server.site_name, "site_id": server.site_id, "availability_zone": server.availability_zone,
            "remote_id": server.remote_id, "operation_id": server.operation_id, "error": server.last_error,
            "attempts": server.attempts, "candidates": [c["site_name"] for c in server.candidates],
            "request": server.request, "created_at": server.created_at, "updated_at": server.updated_at}
