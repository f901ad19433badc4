"""Simulated Keystone v3 groups: the groups themselves, their members, and their role assignments on
projects; and the role assignments of users and groups on domains and the inherited (OS-INHERIT) ones,
with keystone's answers (pinned on a real Keystone by tests/contract/test_identity_driver_contract.py).

Why it exists: Skyfleet provisions declared groups, memberships and group role assignments into
every site; the simulated sites must answer those calls the way keystone does, errors included
(a missing member is ``User '<id>' not found in group '<id>'``; a missing grant names role, actor
and target).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .httpkit import Ctx, Router, empty, json_response
from .keystone_crud import _listing, _with_links, error, forbidden, not_found
from .state import hex_id

router = Router()


@router.route("GET", "/v3/groups")
async def list_groups(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "list_groups")
    return _listing(ctx, "groups", list(ctx.site.keystone.groups.values()), ("name", "domain_id"))


@router.route("POST", "/v3/groups")
async def create_group(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "create_group")
    ks = ctx.site.keystone
    body = await ctx.body("group")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return error(ctx, 400, "Invalid input for field 'name': None is not of type 'string'")
    asked = str(body.get("domain_id") or "default")
    domain_id = next((d for d in ks.domains if d.lower() == asked.lower()), None)  # as keystone_crud
    if domain_id is None:
        return error(ctx, 400, f"Could not find domain: {asked}.")
    if any(g["name"] == name and g["domain_id"] == domain_id for g in ks.groups.values()):
        return error(ctx, 409, f"Conflict occurred attempting to store group - Duplicate entry found with name "
                               f"{name} at domain ID {domain_id}.")
    gid = hex_id()
    ks.groups[gid] = {"id": gid, "name": name, "domain_id": domain_id, "description": body.get("description", "")}
    return json_response({"group": _with_links(ctx, "groups", ks.groups[gid])}, 201)


@router.route("GET,PATCH,DELETE", "/v3/groups/{id}")
async def group_item(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    gid = ctx.params["id"]
    if not ctx.is_admin:
        return forbidden(ctx, {"GET": "get_group", "PATCH": "update_group"}.get(ctx.method, "delete_group"))
    group = ks.groups.get(gid)
    if group is None:
        return not_found(ctx, "group", gid)
    if ctx.method == "GET":
        return json_response({"group": _with_links(ctx, "groups", group)})
    if ctx.method == "DELETE":
        del ks.groups[gid]
        ks.members = {m for m in ks.members if m[0] != gid}
        ks.group_assignments = {a for a in ks.group_assignments if a[0] != gid}
        ks.scoped_grants = {g for g in ks.scoped_grants if g[3] != gid}
        return empty(204)
    body = await ctx.body("group")
    for key, value in body.items():
        if key not in ("id", "domain_id", "links"):
            group[key] = value
    return json_response({"group": _with_links(ctx, "groups", group)})


@router.route("PUT,HEAD,GET,DELETE", "/v3/groups/{gid}/users/{uid}")
async def membership(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    gid, uid = ctx.params["gid"], ctx.params["uid"]
    if not ctx.is_admin:
        return forbidden(ctx, "add_user_to_group" if ctx.method == "PUT" else "check_user_in_group")
    if gid not in ks.groups:
        return not_found(ctx, "group", gid)
    if uid not in ks.users:
        return not_found(ctx, "user", uid)
    pair = (gid, uid)
    if ctx.method == "PUT":
        ks.members.add(pair)
        return empty(204)
    if pair not in ks.members:
        return error(ctx, 404, f"User '{uid}' not found in group '{gid}'")
    if ctx.method == "DELETE":
        ks.members.discard(pair)
    return empty(204)


@router.route("GET", "/v3/users/{uid}/groups")
async def user_groups(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    uid = ctx.params["uid"]
    if not ctx.is_admin and ctx.user_id != uid:
        return forbidden(ctx, "list_groups_for_user")
    groups = [{**ks.groups[g], "membership_expires_at": None} for (g, u) in sorted(ks.members)
              if u == uid and g in ks.groups]
    return _listing(ctx, "groups", groups, ())


@router.route("GET", "/v3/groups/{gid}/users")
async def group_users(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    if not ctx.is_admin:
        return forbidden(ctx, "list_users_in_group")
    if ctx.params["gid"] not in ks.groups:
        return not_found(ctx, "group", ctx.params["gid"])
    users = [ks.users[u] for (g, u) in sorted(ks.members) if g == ctx.params["gid"] and u in ks.users]
    return _listing(ctx, "users", users, ())


@router.route("PUT,HEAD,GET,DELETE", "/v3/projects/{pid}/groups/{gid}/roles/{rid}")
async def group_grant(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    pid, gid, rid = ctx.params["pid"], ctx.params["gid"], ctx.params["rid"]
    if not ctx.is_admin:
        return forbidden(ctx, "create_grant" if ctx.method == "PUT" else "check_grant")
    for kind, table, key in (("role", ks.roles, rid), ("project", ks.projects, pid), ("group", ks.groups, gid)):
        if key not in table:
            return not_found(ctx, kind, key)
    triple = (gid, pid, rid)
    if ctx.method == "PUT":
        ks.group_assignments.add(triple)
        return empty(204)
    if triple not in ks.group_assignments:
        return error(ctx, 404, f"Could not find role assignment with role: {rid}, user or group: {gid}, "
                               f"project, domain, or system: {pid}.")
    if ctx.method == "DELETE":
        ks.group_assignments.discard(triple)
    return empty(204)


async def _scoped_grant(ctx: Ctx, target: str, inherited: bool) -> web.StreamResponse:
    """A grant on a domain, or an inherited one on a domain or project. Keystone checks the target
    first, then the role, then (for a direct grant only) the user or group: an inherited grant to an
    actor that does not exist is accepted (pinned on a real Keystone)."""
    ks = ctx.site.keystone
    tid, actor, aid, rid = ctx.params["tid"], ctx.params["actor"], ctx.params["aid"], ctx.params["rid"]
    if actor not in ("users", "groups") or target not in ("domains", "projects"):
        return error(ctx, 404, "The resource could not be found.")
    if not ctx.is_admin:
        return forbidden(ctx, "create_grant" if ctx.method == "PUT" else "check_grant")
    checks: list[tuple[str, dict[str, Any], str]] = [
        (target[:-1], ks.domains if target == "domains" else ks.projects, tid), ("role", ks.roles, rid)]
    if not inherited:
        checks.append((actor[:-1], ks.users if actor == "users" else ks.groups, aid))
    for kind, table, key in checks:
        if key not in table:
            return not_found(ctx, kind, key)
    grant = (target, tid, actor, aid, rid, inherited)
    if ctx.method == "PUT":
        ks.scoped_grants.add(grant)
        return empty(204)
    if grant not in ks.scoped_grants:
        return error(ctx, 404, f"Could not find role assignment with role: {rid}, user or group: {aid}, "
                               f"project, domain, or system: {tid}.")
    if ctx.method == "DELETE":
        ks.scoped_grants.discard(grant)
    return empty(204)


@router.route("PUT,HEAD,GET,DELETE", "/v3/domains/{tid}/{actor}/{aid}/roles/{rid}")
async def domain_grant(ctx: Ctx) -> web.StreamResponse:
    return await _scoped_grant(ctx, "domains", inherited=False)


@router.route("PUT,HEAD,GET,DELETE", "/v3/OS-INHERIT/domains/{tid}/{actor}/{aid}/roles/{rid}/inherited_to_projects")
async def inherited_domain_grant(ctx: Ctx) -> web.StreamResponse:
    return await _scoped_grant(ctx, "domains", inherited=True)


@router.route("PUT,HEAD,GET,DELETE", "/v3/OS-INHERIT/projects/{tid}/{actor}/{aid}/roles/{rid}/inherited_to_projects")
async def inherited_project_grant(ctx: Ctx) -> web.StreamResponse:
    return await _scoped_grant(ctx, "projects", inherited=True)
