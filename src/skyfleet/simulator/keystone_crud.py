"""Simulated Keystone v3 identity resources: domains, projects, users, roles, role assignments,
regions, services, endpoints and application credentials, with keystone's error bodies.

Why it exists: Skyfleet manages projects, users and role assignments across sites through
openstacksdk's identity proxy; this module answers those calls the way keystone does, including
its admin-only policy for non-admin tokens.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .httpkit import Ctx, Router, empty, json_response
from .state import Resource, hex_id, iso, parse_iso, public

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          500: "Internal Server Error", 503: "Service Unavailable"}

router = Router()


def error(ctx: Ctx, status: int, message: str) -> web.Response:
    return json_response({"error": {"code": status, "title": TITLES.get(status, "Error"), "message": message}},
                         status)


def forbidden(ctx: Ctx, action: str) -> web.Response:
    return error(ctx, 403, f"You are not authorized to perform the requested action: identity:{action}.")


def not_found(ctx: Ctx, kind: str, ident: str) -> web.Response:
    return error(ctx, 404, f"Could not find {kind}: {ident}.")


def _with_links(ctx: Ctx, collection: str, item: Resource) -> Resource:
    return {**public(item), "links": {"self": f"{ctx.base}/v3/{collection}/{item['id']}"}}


def project_view(ctx: Ctx, project: Resource) -> Resource:
    return _with_links(ctx, "projects", project)


def _listing(ctx: Ctx, collection: str, items: list[Resource], filters: tuple[str, ...]) -> web.Response:
    q = ctx.query
    selected = []
    for item in items:
        ok = True
        for key in filters:
            if key in q:
                value = item.get(key)
                wanted = q[key]
                if isinstance(value, bool):
                    ok = ok and value == (wanted.lower() in ("true", "1"))
                else:
                    ok = ok and str(value) == wanted
        if ok:
            selected.append(_with_links(ctx, collection, item))
    return json_response({collection: selected, "links": {"self": f"{ctx.base}/v3/{collection}",
                                                          "previous": None, "next": None}})


# --- domains (as keystone: a name taken is 409, an enabled domain is not deleted) ------------------

@router.route("GET", "/v3/domains")
async def list_domains(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "list_domains")
    return _listing(ctx, "domains", list(ctx.site.keystone.domains.values()), ("name", "enabled"))


@router.route("POST", "/v3/domains")
async def create_domain(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "create_domain")
    ks = ctx.site.keystone
    body = await ctx.body("domain")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return error(ctx, 400, "Invalid input for field 'name': None is not of type 'string'")
    if ks.domain_by_name(name) is not None:
        return error(ctx, 409, "Conflict occurred attempting to store project - it is not permitted to have two "
                               f"projects acting as domains with the same name: {name}.")
    did = hex_id()
    ks.domains[did] = {"id": did, "name": name, "description": str(body.get("description") or ""),
                       "enabled": bool(body.get("enabled", True)), "tags": [], "options": {}}
    return json_response({"domain": _with_links(ctx, "domains", ks.domains[did])}, 201)


@router.route("GET,PATCH,DELETE", "/v3/domains/{id}")
async def get_domain(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    did = ctx.params["id"]
    if ctx.method != "GET" and not ctx.is_admin:
        return forbidden(ctx, "update_domain" if ctx.method == "PATCH" else "delete_domain")
    domain = ks.domains.get(did)
    if domain is None:
        return not_found(ctx, "domain", did)
    if ctx.method == "GET":
        return json_response({"domain": _with_links(ctx, "domains", domain)})
    if ctx.method == "DELETE":
        if domain.get("enabled", True):
            return error(ctx, 403, "Cannot delete a domain that is enabled, please disable it first.")
        del ks.domains[did]  # keystone deletes what the domain holds with it
        for table in (ks.projects, ks.users, ks.groups):
            for ident in [k for k, v in table.items() if v.get("domain_id") == did]:
                del table[ident]
        ks.scoped_grants = {g for g in ks.scoped_grants if not (g[0] == "domains" and g[1] == did)}
        return empty(204)
    body = await ctx.body("domain")
    for key, value in body.items():
        if key not in ("id", "links"):
            domain[key] = value
    return json_response({"domain": _with_links(ctx, "domains", domain)})


# --- regions, services, endpoints (read-only) -------------------------------------------------------

@router.route("GET", "/v3/regions")
async def list_regions(ctx: Ctx) -> web.StreamResponse:
    regions = [{"id": s.region, "description": "", "parent_region_id": None} for s in ctx.site.keystone.regions]
    return _listing(ctx, "regions", regions, ("parent_region_id",))


@router.route("GET", "/v3/services")
async def list_services(ctx: Ctx) -> web.StreamResponse:
    from .keystone import catalog_template

    base = ctx.base.rsplit("/", 2)[0]
    services = [{"id": s["id"], "type": s["type"], "name": s["name"], "enabled": True, "description": None}
                for s in catalog_template(ctx.site.keystone, base)]
    return _listing(ctx, "services", services, ("type", "name"))


@router.route("GET", "/v3/endpoints")
async def list_endpoints(ctx: Ctx) -> web.StreamResponse:
    from .keystone import catalog_template

    base = ctx.base.rsplit("/", 2)[0]
    endpoints = [{"id": e["id"], "interface": e["interface"], "region_id": e["region_id"], "region": e["region"],
                  "url": e["url"], "service_id": s["id"], "enabled": True}
                 for s in catalog_template(ctx.site.keystone, base) for e in s["endpoints"]]
    return _listing(ctx, "endpoints", endpoints, ("interface", "service_id", "region_id"))


# --- projects --------------------------------------------------------------------------------------

@router.route("GET", "/v3/projects")
async def list_projects(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "list_projects")
    return _listing(ctx, "projects", list(ctx.site.keystone.projects.values()),
                    ("name", "domain_id", "enabled", "parent_id", "is_domain"))


def _name_in_domain(ctx: Ctx, body: dict[str, Any], kind: str, lookup: Callable[[str, str], Any]
                    ) -> tuple[str, str] | web.StreamResponse:
    """The new project's or user's (name, domain id), or Keystone's 400/404/409 answer."""
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return error(ctx, 400, "Invalid input for field 'name': None is not of type 'string'")
    asked = str(body.get("domain_id") or "default")
    # Keystone on MySQL compares ids case-insensitively: "Default" finds the domain "default" (tools such
    # as Kingbird's tempest tests pass the domain's name where its id belongs and rely on it)
    domain_id = next((d for d in ctx.site.keystone.domains if d.lower() == asked.lower()), None)
    if domain_id is None:  # keystone answers 400 here, not 404
        return error(ctx, 400, f"Could not find domain: {asked}.")
    if lookup(name, domain_id):
        return error(ctx, 409, f"Conflict occurred attempting to store {kind} - Duplicate entry found with "
                               f"name {name} at domain ID {domain_id}.")
    return name, domain_id


@router.route("POST", "/v3/projects")
async def create_project(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "create_project")
    ks = ctx.site.keystone
    body = await ctx.body("project")
    checked = _name_in_domain(ctx, body, "project", ks.project_by_name)
    if isinstance(checked, web.StreamResponse):
        return checked
    name, domain_id = checked
    pid = ks.add_project(name, body.get("description", ""), domain_id)
    project = ks.projects[pid]
    project["enabled"] = bool(body.get("enabled", True))
    project["tags"] = list(body.get("tags", []))
    for key, value in body.items():
        if key not in project and key not in ("id", "links"):
            project[key] = value  # keystone keeps extra attributes
    return json_response({"project": project_view(ctx, project)}, 201)


@router.route("GET,PATCH,DELETE", "/v3/projects/{id}")
async def project_item(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    pid = ctx.params["id"]
    project = ks.projects.get(pid)
    own = ctx.token is not None and ctx.token.project_id == pid
    if not ctx.is_admin and not (own and ctx.method == "GET"):
        return forbidden(ctx, {"GET": "get_project", "PATCH": "update_project"}.get(ctx.method, "delete_project"))
    if project is None:
        return not_found(ctx, "project", pid)
    if ctx.method == "GET":
        return json_response({"project": project_view(ctx, project)})
    if ctx.method == "DELETE":
        del ks.projects[pid]
        ks.assignments = {a for a in ks.assignments if a[1] != pid}
        ks.scoped_grants = {g for g in ks.scoped_grants if g[1] != pid}
        ks.group_assignments = {a for a in ks.group_assignments if a[1] != pid}
        return empty(204)
    body = await ctx.body("project")
    for key, value in body.items():
        if key not in ("id", "domain_id", "links", "is_domain", "parent_id"):
            project[key] = value
    return json_response({"project": project_view(ctx, project)})


# --- users -----------------------------------------------------------------------------------------

@router.route("GET", "/v3/users")
async def list_users(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "list_users")
    return _listing(ctx, "users", list(ctx.site.keystone.users.values()), ("name", "domain_id", "enabled"))


@router.route("POST", "/v3/users")
async def create_user(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "create_user")
    ks = ctx.site.keystone
    body = await ctx.body("user")
    checked = _name_in_domain(ctx, body, "user", ks.user_by_name)
    if isinstance(checked, web.StreamResponse):
        return checked
    name, domain_id = checked
    uid = ks.add_user(name, body.get("password"), body.get("default_project_id"), domain_id)
    user = ks.users[uid]
    user["enabled"] = bool(body.get("enabled", True))
    for key in ("email", "description"):
        if key in body:
            user[key] = body[key]
    return json_response({"user": _with_links(ctx, "users", user)}, 201)


@router.route("GET,PATCH,DELETE", "/v3/users/{id}")
async def user_item(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    uid = ctx.params["id"]
    if not ctx.is_admin and not (ctx.user_id == uid and ctx.method == "GET"):
        return forbidden(ctx, {"GET": "get_user", "PATCH": "update_user"}.get(ctx.method, "delete_user"))
    user = ks.users.get(uid)
    if user is None:
        return not_found(ctx, "user", uid)
    if ctx.method == "GET":
        return json_response({"user": _with_links(ctx, "users", user)})
    if ctx.method == "DELETE":
        del ks.users[uid]
        ks.assignments = {a for a in ks.assignments if a[0] != uid}
        ks.scoped_grants = {g for g in ks.scoped_grants if g[3] != uid}
        ks.members = {m for m in ks.members if m[1] != uid}
        ks.tokens = {k: t for k, t in ks.tokens.items() if t.user_id != uid}
        return empty(204)
    body = await ctx.body("user")
    for key, value in body.items():
        if key == "password":
            user["_password"] = value
        elif key not in ("id", "domain_id", "links"):
            user[key] = value
    return json_response({"user": _with_links(ctx, "users", user)})


@router.route("GET", "/v3/users/{id}/projects")
async def user_projects(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    uid = ctx.params["id"]
    if not ctx.is_admin and ctx.user_id != uid:
        return forbidden(ctx, "list_user_projects")
    pids = sorted({p for (u, p, _) in ks.assignments if u == uid})
    return _listing(ctx, "projects", [ks.projects[p] for p in pids if p in ks.projects], ("name", "enabled"))


# --- roles and assignments -------------------------------------------------------------------------

@router.route("GET", "/v3/roles")
async def list_roles(ctx: Ctx) -> web.StreamResponse:
    return _listing(ctx, "roles", list(ctx.site.keystone.roles.values()), ("name", "domain_id"))


@router.route("POST", "/v3/roles")
async def create_role(ctx: Ctx) -> web.StreamResponse:
    if not ctx.is_admin:
        return forbidden(ctx, "create_role")
    ks = ctx.site.keystone
    body = await ctx.body("role")
    name = str(body.get("name", ""))
    if not name:
        return error(ctx, 400, "Invalid input for field/attribute name. Value: . '' should be non-empty")
    if any(r["name"] == name for r in ks.roles.values()):
        return error(ctx, 409, f"Conflict occurred attempting to store role - Duplicate entry found with name {name}.")
    rid = hex_id()
    ks.roles[rid] = {"id": rid, "name": name, "domain_id": None, "description": body.get("description"),
                     "options": {}}
    return json_response({"role": _with_links(ctx, "roles", ks.roles[rid])}, 201)


@router.route("GET,DELETE", "/v3/roles/{id}")
async def get_role(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    rid = ctx.params["id"]
    if ctx.method == "DELETE" and not ctx.is_admin:
        return forbidden(ctx, "delete_role")
    role = ks.roles.get(rid)
    if role is None:
        return not_found(ctx, "role", rid)
    if ctx.method == "GET":
        return json_response({"role": _with_links(ctx, "roles", role)})
    del ks.roles[rid]  # keystone drops the role's assignments with it
    ks.assignments = {a for a in ks.assignments if a[2] != rid}
    ks.group_assignments = {a for a in ks.group_assignments if a[2] != rid}
    ks.scoped_grants = {g for g in ks.scoped_grants if g[4] != rid}
    ks.implied = {i for i in ks.implied if rid not in i}
    return empty(204)


@router.route("PUT,GET,HEAD,DELETE", "/v3/roles/{prior}/implies/{implied}")
async def implied_role(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    prior, implied = ctx.params["prior"], ctx.params["implied"]
    if ctx.method in ("PUT", "DELETE") and not ctx.is_admin:
        return forbidden(ctx, "create_implied_role" if ctx.method == "PUT" else "delete_implied_role")
    for ident in (prior, implied):
        if ident not in ks.roles:
            return not_found(ctx, "role", ident)
    if ctx.method == "PUT" and ks.roles[implied]["name"] == "admin":  # keystone's prohibited_implied_role
        return error(ctx, 403, f"{implied} cannot be an implied roles.")
    if ctx.method == "PUT":
        ks.implied.add((prior, implied))
        return json_response({"role_inference": {"prior_role": {"id": prior}, "implies": {"id": implied}}}, 201)
    if (prior, implied) not in ks.implied:
        return error(ctx, 404, f"Could not find implied role: {implied}.")
    if ctx.method == "DELETE":
        ks.implied.discard((prior, implied))
    return empty(204)


@router.route("GET", "/v3/role_assignments")
async def list_assignments(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    q = ctx.query
    if not ctx.is_admin and q.get("user.id") != ctx.user_id:
        return forbidden(ctx, "list_role_assignments")
    names = "include_names" in q and q["include_names"].lower() not in ("0", "false")
    result = []
    if "group.id" in q:
        result = [_group_assignment(ctx, *a) for a in sorted(ks.group_assignments)
                  if a[0] == q["group.id"] and q.get("scope.project.id", a[1]) == a[1]
                  and q.get("role.id", a[2]) == a[2]]
    for uid, pid, rid in [] if "group.id" in q else sorted(ks.assignments):
        if (q.get("user.id", uid) != uid or q.get("scope.project.id", pid) != pid
                or q.get("role.id", rid) != rid):
            continue
        role: dict[str, Any] = {"id": rid}
        user: dict[str, Any] = {"id": uid}
        project: dict[str, Any] = {"id": pid}
        if names:
            role["name"] = ks.roles[rid]["name"]
            user.update(name=ks.users[uid]["name"], domain={"id": ks.users[uid]["domain_id"]})
            project.update(name=ks.projects[pid]["name"], domain={"id": ks.projects[pid]["domain_id"]})
        result.append({"role": role, "user": user, "scope": {"project": project},
                       "links": {"assignment": f"{ctx.base}/v3/projects/{pid}/users/{uid}/roles/{rid}"}})
    for target, tid, actor, aid, rid, inherited in sorted(ks.scoped_grants):  # domains, and inherited grants
        key = "user.id" if actor == "users" else "group.id"
        if ("group.id" if actor == "users" else "user.id") in q or q.get(key, aid) != aid \
                or q.get("role.id", rid) != rid or "scope.project.id" in q:
            continue
        grant: dict[str, Any] = {"role": {"id": rid}, actor[:-1]: {"id": aid}, "scope": {target[:-1]: {"id": tid}}}
        if inherited:
            grant["scope"]["OS-INHERIT:inherited_to"] = "projects"
        result.append(grant)
    return json_response({"role_assignments": result, "links": {"self": f"{ctx.base}/v3/role_assignments",
                                                                "previous": None, "next": None}})


def _group_assignment(ctx: Ctx, gid: str, pid: str, rid: str) -> dict[str, Any]:
    return {"links": {"assignment": f"{ctx.base}/v3/projects/{pid}/groups/{gid}/roles/{rid}"},
            "scope": {"project": {"id": pid}}, "group": {"id": gid}, "role": {"id": rid}}


@router.route("PUT,HEAD,GET,DELETE", "/v3/projects/{pid}/users/{uid}/roles/{rid}")
async def assignment(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    pid, uid, rid = ctx.params["pid"], ctx.params["uid"], ctx.params["rid"]
    if not ctx.is_admin:
        return forbidden(ctx, "create_grant" if ctx.method == "PUT" else "check_grant")
    for kind, table, key in (("project", ks.projects, pid), ("user", ks.users, uid), ("role", ks.roles, rid)):
        if key not in table:
            return not_found(ctx, kind, key)
    triple = (uid, pid, rid)
    if ctx.method == "PUT":
        ks.assignments.add(triple)
        return empty(204)
    if triple not in ks.assignments:
        return error(ctx, 404, f"Could not find role assignment with role: {rid}, user or group: {uid}, "
                               f"project, domain, or system: {pid}.")
    if ctx.method == "DELETE":
        ks.assignments.discard(triple)
    return empty(204)


@router.route("GET", "/v3/projects/{pid}/users/{uid}/roles")
async def user_project_roles(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    roles = [ks.roles[r["id"]] for r in ks.user_roles(ctx.params["uid"], ctx.params["pid"])]
    return _listing(ctx, "roles", roles, ())


# --- application credentials -----------------------------------------------------------------------

def _app_cred_view(ctx: Ctx, ac: Resource) -> Resource:
    url = f"{ctx.base}/v3/users/{ac['user_id']}/application_credentials/{ac['id']}"
    return {**public(ac), "links": {"self": url}}


@router.route("GET,POST", "/v3/users/{uid}/application_credentials")
async def app_creds(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    uid = ctx.params["uid"]
    if ctx.user_id != uid and not ctx.is_admin:
        return forbidden(ctx, "list_application_credentials")
    if ctx.method == "GET":
        items = [_app_cred_view(ctx, a) for a in ks.app_creds.values() if a["user_id"] == uid
                 and ("name" not in ctx.query or a["name"] == ctx.query["name"])]
        return json_response({"application_credentials": items,
                              "links": {"self": f"{ctx.base}/v3/users/{uid}/application_credentials",
                                        "previous": None, "next": None}})
    assert ctx.token is not None
    if ctx.user_id != uid:
        return forbidden(ctx, "create_application_credential")
    body = await ctx.body("application_credential")
    name = str(body.get("name", ""))
    if any(a["user_id"] == uid and a["name"] == name for a in ks.app_creds.values()):
        return error(ctx, 409, "Conflict occurred attempting to store application_credential - "
                               f"Duplicate entry found with name {name}.")
    secret = str(body.get("secret") or secrets.token_urlsafe(64))
    expires = parse_iso(body["expires_at"]) if body.get("expires_at") else None
    wanted = body.get("roles") or ctx.token.roles
    roles = [r for r in ctx.token.roles if any(w.get("id") == r["id"] or w.get("name") == r["name"] for w in wanted)]
    acid = hex_id()
    ac = {"id": acid, "name": name, "description": body.get("description"), "user_id": uid,
          "project_id": ctx.token.project_id, "roles": roles, "unrestricted": bool(body.get("unrestricted", False)),
          "expires_at": iso(expires, micro=True, zulu=False) if expires else None, "access_rules": [],
          "_secret": secret, "_expires": expires, "_created": time.time()}
    ks.app_creds[acid] = ac
    return json_response({"application_credential": {**_app_cred_view(ctx, ac), "secret": secret}}, 201)


@router.route("GET,DELETE", "/v3/users/{uid}/application_credentials/{id}")
async def app_cred_item(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    ac = ks.app_creds.get(ctx.params["id"])
    if ctx.user_id != ctx.params["uid"] and not ctx.is_admin:
        return forbidden(ctx, "get_application_credential")
    if ac is None or ac["user_id"] != ctx.params["uid"]:
        return not_found(ctx, "application credential", ctx.params["id"])
    if ctx.method == "DELETE":
        del ks.app_creds[ac["id"]]
        ks.tokens = {k: t for k, t in ks.tokens.items() if t.app_cred_id != ac["id"]}
        return empty(204)
    return json_response({"application_credential": _app_cred_view(ctx, ac)})
