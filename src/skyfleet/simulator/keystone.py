"""Simulated Keystone v3: version discovery, tokens, catalog and the identity CRUD openstacksdk uses.

Why it exists: every openstacksdk session starts here; tokens minted here are what the other
simulated services accept, and the catalog is what sends clients to the right site and region.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from . import keystone_crud, keystone_groups
from .httpkit import Ctx, Router, empty, json_response
from .keystone_crud import error, not_found, project_view
from .state import KeystoneState, Resource, Site, Token, hex_id, iso

TOKEN_TTL_S = 3600.0
CATALOG_TYPES = (
    ("identity", "keystone"),
    ("compute", "nova"),
    ("image", "glance"),
    ("network", "neutron"),
    ("block-storage", "cinder"),
    ("volumev2", "cinderv2"),  # the v2 path (the 3.0 API) older clients still look up
    ("volumev3", "cinderv3"),
    ("placement", "placement"),
)
AUTH_REQUIRED = "The request you have made requires authentication."

router = Router()


def _version(ctx: Ctx) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{ctx.base}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    if ctx.method != "GET":
        return None
    if ctx.path == "/":
        return json_response({"versions": {"values": [_version(ctx)]}}, 300,
                             {"Location": f"{ctx.base}/v3/", "Vary": "X-Auth-Token"})
    if ctx.path in ("/v3", "/v3/"):
        return json_response({"version": _version(ctx)}, 200, {"Vary": "X-Auth-Token"})
    return None


FLASK_ERRORS = {404: ("Not Found", "The requested URL was not found on the server. If you entered the URL manually "
                                   "please check your spelling and try again."),
                405: ("Method Not Allowed", "The method is not allowed for the requested URL.")}


def _flask_error(status: int) -> web.Response:
    """keystone is a Flask app: URLs it has no route for get werkzeug's HTML page, not a JSON error."""
    title, text = FLASK_ERRORS[status]
    body = f"<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{text}</p>\n"
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


async def handle(ctx: Ctx) -> web.StreamResponse:
    response = await _route(ctx)
    response.headers["Vary"] = "X-Auth-Token"
    if response.status == 401:
        response.headers["WWW-Authenticate"] = f'Keystone uri="{ctx.base}/v3"'
    return response


async def _route(ctx: Ctx) -> web.StreamResponse:
    handler, params, known = router.match(ctx.method, ctx.path)
    if handler is None:
        handler, params, known2 = keystone_crud.router.match(ctx.method, ctx.path)
        known = known or known2
    if handler is None:
        handler, params, known3 = keystone_groups.router.match(ctx.method, ctx.path)
        known = known or known3
    if handler is None:
        return _flask_error(405 if known else 404)
    ctx.params = params
    if handler not in (issue_token,):
        ctx.token = ctx.site.keystone.token(ctx.request.headers.get("X-Auth-Token"))
        if ctx.token is None:
            return error(ctx, 401, AUTH_REQUIRED)
    return await handler(ctx)


# --- catalog ---------------------------------------------------------------------------------------

def _service_urls(base: str, site: Site, leader: Site) -> dict[str, str]:
    root = f"{base}/{site.name}"
    volume = f"{root}/volume/v3/%(project_id)s"
    return {"identity": f"{base}/{leader.name}/identity/v3", "compute": f"{root}/compute/v2.1",
            "image": f"{root}/image", "network": f"{root}/network", "block-storage": volume, "volumev3": volume,
            "volumev2": f"{root}/volume/v2/%(project_id)s",
            "placement": f"{root}/placement"}


def catalog_template(ks: KeystoneState, base: str) -> list[Resource]:
    if ks._catalog is not None:
        return ks._catalog
    entries: list[Resource] = []
    for stype, sname in CATALOG_TYPES:
        sid = ks.services.setdefault(stype, hex_id())
        endpoints = []
        for site in ks.regions:
            url = _service_urls(base, site, ks.leader)[stype]
            for iface in ("public", "internal", "admin"):
                eid = ks.endpoint_ids.setdefault((site.region, stype, iface), hex_id())
                endpoints.append({"id": eid, "interface": iface, "region_id": site.region, "url": url,
                                  "region": site.region})
        entries.append({"endpoints": endpoints, "id": sid, "type": stype, "name": sname})
    ks._catalog = entries
    return entries


def catalog_for(ks: KeystoneState, base: str, project_id: str | None) -> list[Resource]:
    template = catalog_template(ks, base)
    if project_id is None:
        return template
    return [{**svc, "endpoints": [{**e, "url": e["url"].replace("%(project_id)s", project_id)}
                                  for e in svc["endpoints"]]} for svc in template]


def _base_url(ctx: Ctx) -> str:
    return ctx.base.rsplit("/", 2)[0]


# --- tokens ----------------------------------------------------------------------------------------

def token_body(ctx: Ctx, tok: Token, *, with_catalog: bool = True) -> dict[str, Any]:
    ks = ctx.site.keystone
    user = ks.users[tok.user_id]
    domain = ks.domains.get(user["domain_id"], ks.domains["default"])
    body: dict[str, Any] = {
        "methods": tok.methods,
        "user": {"domain": {"id": domain["id"], "name": domain["name"]}, "id": user["id"], "name": user["name"],
                 "password_expires_at": None},
        "audit_ids": [tok.audit_id],
        "expires_at": iso(tok.expires, micro=True),
        "issued_at": iso(tok.issued, micro=True),
    }
    if tok.project_id:
        project = ks.projects[tok.project_id]
        pdomain = ks.domains.get(project["domain_id"], ks.domains["default"])
        body["project"] = {"domain": {"id": pdomain["id"], "name": pdomain["name"]}, "id": project["id"],
                           "name": project["name"]}
        body["is_domain"] = False
    elif tok.system:
        body["system"] = {"all": True}
    elif tok.domain_id:
        d = ks.domains[tok.domain_id]
        body["domain"] = {"id": d["id"], "name": d["name"]}
    if tok.roles:
        body["roles"] = tok.roles
    if tok.app_cred_id:
        ac = ks.app_creds[tok.app_cred_id]
        body["application_credential"] = {"id": ac["id"], "name": ac["name"], "restricted": not ac["unrestricted"]}
    if with_catalog and (tok.project_id or tok.system or tok.domain_id):
        body["catalog"] = catalog_for(ks, _base_url(ctx), tok.project_id)
    return {"token": body}


def _find_user(ks: KeystoneState, spec: dict[str, Any]) -> Resource | None:
    if "id" in spec:
        return ks.users.get(spec["id"])
    domain = spec.get("domain") or {}
    domain_id = domain.get("id")
    if domain_id is None and "name" in domain:
        found = ks.domain_by_name(domain["name"])
        domain_id = found["id"] if found else None
    return ks.user_by_name(spec.get("name", ""), domain_id) if domain_id else None


def _authenticate(ks: KeystoneState, identity: dict[str, Any]) -> tuple[Resource, Resource | None] | None:
    """(user, application credential or None) for valid credentials, else None."""
    methods = identity.get("methods") or []
    if "password" in methods:
        spec = (identity.get("password") or {}).get("user") or {}
        user = _find_user(ks, spec)
        if user and user["enabled"] and user["_password"] is not None and \
                secrets.compare_digest(str(spec.get("password", "")), user["_password"]):
            return user, None
        return None
    if "token" in methods:
        tok = ks.token((identity.get("token") or {}).get("id"))
        return (ks.users[tok.user_id], None) if tok else None
    if "application_credential" in methods:
        spec = identity.get("application_credential") or {}
        if "id" in spec:
            ac = ks.app_creds.get(spec["id"])
        else:
            user = _find_user(ks, spec.get("user") or {})
            ac = next((a for a in ks.app_creds.values() if user and a["user_id"] == user["id"]
                       and a["name"] == spec.get("name")), None)
        if ac and secrets.compare_digest(str(spec.get("secret", "")), ac["_secret"]) and \
                (ac["_expires"] is None or ac["_expires"] > time.time()):
            return ks.users[ac["user_id"]], ac
    return None


def _scope(ks: KeystoneState, scope: Any, user: Resource) -> tuple[str | None, str | None, bool] | None:
    """(project_id, domain_id, system) from the requested scope; None if it names nothing known."""
    if not scope:
        return user.get("default_project_id"), None, False
    if not isinstance(scope, dict):
        return None, None, False
    if "project" in scope:
        spec = scope["project"]
        if "id" in spec:
            project = ks.projects.get(spec["id"])
        else:
            domain = spec.get("domain") or {}
            domain_id = domain.get("id")
            if domain_id is None:
                found = ks.domain_by_name(domain.get("name", ""))
                domain_id = found["id"] if found else None
            project = ks.project_by_name(spec.get("name", ""), domain_id) if domain_id else None
        return (project["id"], None, False) if project else None
    if "domain" in scope:
        spec = scope["domain"]
        domain = ks.domains.get(spec["id"]) if "id" in spec else ks.domain_by_name(spec.get("name", ""))
        return (None, domain["id"], False) if domain else None
    if "system" in scope:
        return None, None, True
    return None


@router.route("POST", "/v3/auth/tokens")
async def issue_token(ctx: Ctx) -> web.StreamResponse:
    if ctx.faults is not None and ctx.faults.auth_fail:
        return error(ctx, 401, AUTH_REQUIRED)
    ks = ctx.site.keystone
    doc = await ctx.body("auth")
    identity = doc.get("identity") or {}
    found = _authenticate(ks, identity)
    if found is None:
        return error(ctx, 401, AUTH_REQUIRED)
    user, ac = found
    if ac is not None:
        scope: tuple[str | None, str | None, bool] | None = (ac["project_id"], None, False)
    else:
        scope = _scope(ks, doc.get("scope"), user)
    if scope is None:
        return error(ctx, 401, AUTH_REQUIRED)
    project_id, domain_id, system = scope
    admin_id = ks.role_id("admin")
    if ac is not None:
        roles = [{"id": r["id"], "name": r["name"]} for r in ac["roles"]]
    elif project_id:
        roles = ks.user_roles(user["id"], project_id)
    elif domain_id:  # as Keystone: the roles granted on that domain, none inherited (401 without any)
        roles = ks.domain_roles(user["id"], domain_id)
    elif system:
        is_admin = any(u == user["id"] and r == admin_id for (u, _, r) in ks.assignments)
        roles = [{"id": admin_id, "name": "admin"}] if is_admin else []
    else:
        roles = []
    if (project_id or system or domain_id) and not roles:
        return error(ctx, 401, AUTH_REQUIRED)
    if project_id and not ks.projects[project_id]["enabled"]:
        return error(ctx, 401, AUTH_REQUIRED)
    now = time.time()
    project = ks.projects.get(project_id or "")
    methods = list(identity.get("methods") or ["password"])
    tok = Token(id="gAAAAAB" + secrets.token_urlsafe(140), user_id=user["id"], user_name=user["name"],
                project_id=project_id, project_name=project["name"] if project else None, roles=roles,
                methods=methods, issued=now, expires=now + TOKEN_TTL_S, audit_id=secrets.token_urlsafe(16)[:22],
                system=system, domain_id=domain_id, app_cred_id=ac["id"] if ac else None)
    ks.tokens[tok.id] = tok
    if len(ks.tokens) > 5000:
        for key in [k for k, t in ks.tokens.items() if t.expired]:
            del ks.tokens[key]
    nocatalog = "nocatalog" in ctx.query
    return json_response(token_body(ctx, tok, with_catalog=not nocatalog), 201, {"X-Subject-Token": tok.id})


@router.route("GET,HEAD,DELETE", "/v3/auth/tokens")
async def token_ops(ctx: Ctx) -> web.StreamResponse:
    if ctx.faults is not None and ctx.faults.auth_fail:
        return error(ctx, 401, AUTH_REQUIRED)
    subject_id = ctx.request.headers.get("X-Subject-Token", "")
    ks = ctx.site.keystone
    subject = ks.token(subject_id)
    if subject is None:
        return not_found(ctx, "token", subject_id)
    if ctx.method == "DELETE":
        del ks.tokens[subject.id]
        return empty(204)
    if ctx.method == "HEAD":
        return empty(200, {"X-Subject-Token": subject.id})
    return json_response(token_body(ctx, subject, with_catalog="nocatalog" not in ctx.query), 200,
                         {"X-Subject-Token": subject.id})


@router.route("GET", "/v3/auth/catalog")
async def auth_catalog(ctx: Ctx) -> web.StreamResponse:
    assert ctx.token is not None
    catalog = catalog_for(ctx.site.keystone, _base_url(ctx), ctx.token.project_id)
    return json_response({"catalog": catalog, "links": {"self": f"{ctx.base}/v3/auth/catalog"}})


@router.route("GET", "/v3/auth/projects")
async def auth_projects(ctx: Ctx) -> web.StreamResponse:
    ks = ctx.site.keystone
    pids = {p for (u, p, _) in ks.assignments if u == ctx.user_id}
    projects = [project_view(ctx, ks.projects[p]) for p in sorted(pids) if p in ks.projects]
    return json_response({"projects": projects, "links": {"self": f"{ctx.base}/v3/auth/projects"}})
