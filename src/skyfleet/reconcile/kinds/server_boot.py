"""``server.boot``: boot one server on one site, in the tenant's project, and watch it to ACTIVE.

The rule. The server is created with a token scoped to the owner's mapped project on the site (see
``computeapi.project_auth``), so it is the project's. It carries ``skyfleet_server`` (Skyfleet's id
of the server) in its metadata, and the create is recorded on the task before it is sent: an attempt
cut short by a crash finds its server by that mark and watches it, so a boot never leaves a duplicate.
The task ends when the server is ACTIVE. A refusal ends it as a permanent failure whose message
starts with ``refused:`` (the operation's continuation then tries the next site): a quota-exceeded
answer, a server that goes to ERROR (its fault, e.g. "No valid host was found"), or one not ACTIVE
in time. A server that did not make it is deleted on the site that refused it before the task ends.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.text import Name
from skyfleet.drivers.base import Record
from skyfleet.drivers.openstack import computeapi, imageapi, syncapi
from skyfleet.drivers.openstack.errors import QUOTA_WORDS
from skyfleet.drivers.openstack.inventory import server_record
from skyfleet.errors import PermanentSiteError, SiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import IdentityRef, site_project

POLL = 2.0  # seconds between two looks at a server that is building
MARK = "skyfleet_server"
IMAGE_MARK = "skyfleet_resource"


class ImageRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(max_length=255)
    resource_id: str | None = None  # a declared image: its copy on the site carries this mark


class BootPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str
    name: Name = Field(max_length=255)
    flavor: Name = Field(max_length=255)
    image: ImageRef
    networks: list[str] = Field(default_factory=list)
    keypair: str | None = None
    security_groups: list[str] = Field(default_factory=list)
    user_data: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    availability_zone: str | None = None
    project: IdentityRef | None = None
    site_scope: bool = False
    active_timeout: float = Field(600.0, gt=0)


def _conn(ctx: SiteContext, p: BootPayload) -> tuple[Any, str]:
    admin = ctx.connection()
    project = site_project(ctx, p.project, site_scope=p.site_scope)
    return ctx.pool.connection(computeapi.project_auth(admin, ctx.auth, project), timeout=ctx.timeout), project


def observe(ctx: SiteContext, p: BootPayload) -> dict[str, Any]:
    conn, project = _conn(ctx, p)
    found = computeapi.find_servers(conn, name=p.name, tag_key=MARK, tag=p.server_id)
    ctx.saw([server_record(server) for server in found[:1]])
    return {"project": project, "found": found[0] if found else None, "extra": [s["id"] for s in found[1:]]}


def diff(_p: BootPayload, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if found is None:
        return {"create": True, "project": seen["project"]}
    if found.get("status") == "ACTIVE" and not seen["extra"]:
        return None
    return {"watch": found["id"], "extra": seen["extra"]}


def apply(ctx: SiteContext, p: BootPayload, plan: Plan) -> dict[str, Any]:
    conn, project = _conn(ctx, p)
    for server_id in plan.get("extra") or []:
        computeapi.delete_server(conn, server_id)  # never expected: two servers with one mark
    if "watch" in plan:
        return _watch(ctx, conn, p, plan["watch"])
    body = _body(ctx, conn, p, project)
    try:
        made = computeapi.create_server(conn, body)
    except SiteError as exc:
        if any(word in exc.message.lower() for word in QUOTA_WORDS):
            raise PermanentSiteError(f"refused: quota exceeded in site {ctx.site_name}: {exc.message}") from exc
        raise
    return _watch(ctx, conn, p, str(made["id"]))


def _body(ctx: SiteContext, conn: Any, p: BootPayload, project: str) -> dict[str, Any]:
    flavor = syncapi.find_flavor(conn, p.flavor)
    if flavor is None:
        raise PermanentSiteError(f"refused: no flavor {p.flavor!r} in site {ctx.site_name}")
    image = _image(conn, p, project)
    if image is None:
        raise PermanentSiteError(f"refused: no image {p.image.name!r} the project may boot in site {ctx.site_name}")
    body: dict[str, Any] = {"name": p.name, "flavorRef": flavor["id"], "imageRef": image,
                            "metadata": {**p.metadata, MARK: p.server_id}}
    if p.networks:
        body["networks"] = [{"uuid": nid} for nid in computeapi.network_ids(conn, p.networks, project)]
    if p.keypair:
        body["key_name"] = p.keypair
    if p.security_groups:
        body["security_groups"] = [{"name": name} for name in p.security_groups]
    if p.user_data:
        body["user_data"] = p.user_data
    if p.availability_zone:
        body["availability_zone"] = p.availability_zone
    return body


def _image(conn: Any, p: BootPayload, project: str) -> str | None:
    if p.image.resource_id is None:
        return computeapi.image_id(conn, p.image.name, project)
    copies = [i for i in imageapi.find_images(conn, name=p.image.name, owner=project)
              if i.get(IMAGE_MARK) == p.image.resource_id and i.get("status") == "active"]
    if copies:
        return str(copies[0]["id"])
    return computeapi.image_id(conn, p.image.name, project)  # adopted: an identical image without the mark


def _watch(ctx: SiteContext, conn: Any, p: BootPayload, server_id: str) -> dict[str, Any]:
    """Wait for ACTIVE; a server that fails or stalls is deleted and the site's refusal raised."""
    deadline = time.monotonic() + p.active_timeout
    while True:
        server = computeapi.get_server(conn, server_id)
        if server is None:
            ctx.saw([_gone(server_id)])
            raise PermanentSiteError(f"refused: the server vanished in site {ctx.site_name} while it was building")
        status = server.get("status")
        record = server_record(server)
        ctx.saw([record])  # in the global view while it builds, not only after the next refresh
        if status == "ACTIVE":
            return {"status": "ACTIVE", "remote_id": server_id,
                    "availability_zone": server.get("OS-EXT-AZ:availability_zone")}
        if status == "ERROR" or time.monotonic() > deadline:
            fault = (server.get("fault") or {}).get("message") or "no fault given"
            computeapi.delete_server(conn, server_id)
            ctx.saw([replace(record, status="DELETED")])
            if status == "ERROR":
                raise PermanentSiteError(f"refused: the server went to ERROR in site {ctx.site_name}: {fault}")
            raise PermanentSiteError(f"refused: the server was not ACTIVE in site {ctx.site_name} after "
                                     f"{p.active_timeout:g} s (status {status}); deleted")
        ctx.report({"status": status})
        time.sleep(POLL)


def _gone(server_id: str) -> Record:
    return Record(kind="servers", remote_id=server_id, project_id=None, name=None, status="DELETED")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    return {"status": "ACTIVE", "remote_id": found["id"], "availability_zone": found.get("OS-EXT-AZ:availability_zone")}


def intent(plan: Plan) -> dict[str, Any] | None:
    return {"create": True} if plan.get("create") else None


KIND = register(TaskKind(name="server.boot", description="Boot one server on one site and watch it to ACTIVE.",
                         payload=BootPayload, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=intent))
