"""The calls a boot makes: act in the tenant's project, find what the boot names, create, watch, delete.

Why a module of its own: a server must belong to the tenant's project, and Nova creates a server in
the project of the token that asks; it has no "on behalf of" field. ``project_auth`` gives the site
credential a token scoped to the tenant's mapped project: the credential's user is granted the
``member`` role there first (idempotent), so the server is the project's, visible and manageable by
its members, and counts against its quota. Every function raises only
:class:`~skyfleet.errors.SiteError`; "absent" is None.
"""

from __future__ import annotations

import re
from typing import Any

from openstack import connection as sdk_connection

from skyfleet.drivers.openstack import identityapi
from skyfleet.drivers.openstack.syncapi import _call, current_ids
from skyfleet.errors import PermanentSiteError

Json = dict[str, Any]
MEMBER_ROLES = ("member", "_member_")
SCOPE_KEYS = ("project_name", "project_id", "project_domain_name", "project_domain_id")


def project_auth(conn: sdk_connection.Connection, auth: dict[str, Any], project_id: str) -> dict[str, Any]:
    """The site credential's auth document scoped to ``project_id``, after granting its user the member
    role there (a no-op when it holds it). The credential's own project needs no grant."""
    user_id, own_project = current_ids(conn)
    if project_id != own_project:
        role = next((rid for name in MEMBER_ROLES if (rid := identityapi.find_role(conn, name))), None)
        if role is None:
            raise PermanentSiteError("the site has no member role to act in the tenant's project with")
        identityapi.grant(conn, target_id=project_id, actor="users", actor_id=user_id, role_id=role,
                          target="projects", inherited=False)  # PUT: idempotent, one call
    scoped = {k: v for k, v in auth.items() if k not in SCOPE_KEYS}
    return {**scoped, "project_id": project_id}


def find_servers(conn: sdk_connection.Connection, *, name: str, tag_key: str, tag: str) -> list[Json]:
    """The project's servers named ``name`` whose metadata ``tag_key`` is ``tag`` (a boot's own mark)."""
    body = _call(conn, "compute", "GET", "/servers/detail", params={"name": f"^{re.escape(name)}$"})
    return [s for s in body.get("servers") or [] if (s.get("metadata") or {}).get(tag_key) == tag]


def get_server(conn: sdk_connection.Connection, server_id: str) -> Json | None:
    found = _call(conn, "compute", "GET", f"/servers/{server_id}", missing_ok=True)
    return None if found is None else dict(found["server"])


def create_server(conn: sdk_connection.Connection, body: Json) -> Json:
    made: Json = _call(conn, "compute", "POST", "/servers", body={"server": body})["server"]
    return made


def delete_server(conn: sdk_connection.Connection, server_id: str) -> bool:
    """Delete a server; False when it was already gone."""
    return _call(conn, "compute", "DELETE", f"/servers/{server_id}", missing_ok=True) is not None


def server_action(conn: sdk_connection.Connection, server_id: str, action: str) -> None:
    """``os-start``, ``os-stop`` or ``reboot`` (soft)."""
    body: Json = {"reboot": {"type": "SOFT"}} if action == "reboot" else {action: None}
    _call(conn, "compute", "POST", f"/servers/{server_id}/action", body=body)


def network_ids(conn: sdk_connection.Connection, names: list[str], project_id: str) -> list[str]:
    """The ids of networks by name: the project's own first, else a shared or external one."""
    out = []
    for name in names:
        found = _call(conn, "network", "GET", "/networks", params={"name": name}).get("networks") or []
        own = [n for n in found if n.get("project_id") == project_id or n.get("tenant_id") == project_id]
        usable = own or [n for n in found if n.get("shared") or n.get("router:external")]
        if len(usable) != 1:
            raise PermanentSiteError(f"network {name!r}: {'none' if not usable else len(usable)} usable in this "
                                     "site for the project")
        out.append(str(usable[0]["id"]))
    return out


def image_id(conn: sdk_connection.Connection, name: str, project_id: str) -> str | None:
    """An active image of this name the project may boot: its own first, else a public or community one."""
    body = _call(conn, "image", "GET", "/images", params={"name": name, "status": "active"})
    images = body.get("images") or []
    own = [i for i in images if i.get("owner") == project_id]
    usable = own or [i for i in images if i.get("visibility") in ("public", "community")]
    return str(usable[0]["id"]) if usable else None


def console_log(conn: sdk_connection.Connection, server_id: str, *, length: int | None = None) -> str:
    """The server's console output, its last ``length`` lines (None: all the site keeps)."""
    body = {"os-getConsoleOutput": {"length": length} if length is not None else {}}
    found = _call(conn, "compute", "POST", f"/servers/{server_id}/action", body=body)
    return str(found.get("output") or "")


def instance_actions(conn: sdk_connection.Connection, server_id: str) -> list[Json]:
    """The server's action history (create, stop, reboot...), newest first, with request ids."""
    found = _call(conn, "compute", "GET", f"/servers/{server_id}/os-instance-actions")
    return list(found.get("instanceActions") or [])
