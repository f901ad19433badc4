"""The Keystone v3 calls that provision declared identity (projects, users, groups, memberships, and
role assignments on projects or domains, inherited ones included) into a site's own Keystone.

Why it exists: sites that share nothing each have a Keystone; Skyfleet writes the same objects into
each of them. Plain REST through openstacksdk's identity adapter so the exact bodies are explicit.
Every function raises only :class:`~skyfleet.errors.SiteError`; "absent" is None or False, never an
exception. A password given to a function is sent to the site and nowhere else (never logged: the
request that carries it is made with keystoneauth's ``log=False``, which would otherwise log the body
at DEBUG; never in an error text: Keystone's errors do not echo it).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Literal

from keystoneauth1 import adapter as ks_adapter
from openstack import connection as sdk_connection

from skyfleet.drivers.openstack.errors import from_status, site_call
from skyfleet.drivers.openstack.syncapi import _call

Json = dict[str, Any]
Collection = Literal["projects", "users", "groups"]
Writable = Literal["projects", "users", "groups", "domains"]  # a domain is written, not looked up by domain
Actor = Literal["users", "groups"]
Target = Literal["projects", "domains"]
SINGULAR = {"projects": "project", "users": "user", "groups": "group", "domains": "domain"}
# The identity endpoint of each pooled connection, found once: keystoneauth otherwise resolves it from
# the token's catalog on every request (a deep copy of the catalog each time, about a quarter of the
# client's CPU per call in bench/identity.py), and a fleet of identity tasks makes thousands of calls.
_ENDPOINTS: weakref.WeakKeyDictionary[sdk_connection.Connection, str] = weakref.WeakKeyDictionary()
_ENDPOINTS_LOCK = threading.Lock()


def _at(conn: sdk_connection.Connection, path: str) -> str:
    """``path`` under the connection's identity endpoint (absolute, so the catalog is not searched
    again); ``path`` itself, resolved per request as before, when the endpoint cannot be found."""
    with _ENDPOINTS_LOCK:
        base = _ENDPOINTS.get(conn)
    if base is None:
        with site_call():
            found = ks_adapter.Adapter.get_endpoint(conn.identity)
        if not found:
            return path
        base = str(found).rstrip("/")
        with _ENDPOINTS_LOCK:
            _ENDPOINTS[conn] = base
    return f"{base}/{path.lstrip('/')}"


def _ks(conn: sdk_connection.Connection, method: str, path: str, **kwargs: Any) -> Any:
    """One identity request (``syncapi._call``) at ``path`` under the connection's identity endpoint."""
    return _call(conn, "identity", method, _at(conn, path), **kwargs)


def domain_id(conn: sdk_connection.Connection, name: str) -> str | None:
    """The id of the domain named ``name`` in this site, None when there is none."""
    found = _ks(conn, "GET", "/domains", params={"name": name})["domains"]
    return str(found[0]["id"]) if found else None


def find_domain(conn: sdk_connection.Connection, name: str) -> Json | None:
    """The domain named ``name`` (exact case), None when there is none."""
    found = _ks(conn, "GET", "/domains", params={"name": name})["domains"]
    return next((dict(d) for d in found if d.get("name") == name), None)


def own_domain_ids(conn: sdk_connection.Connection) -> set[str]:
    """The domains of the connection's own credential: its user's and its project's."""
    with site_call():
        access = conn.session.auth.get_access(conn.session)
        return {str(d) for d in (access.user_domain_id, access.project_domain_id) if d}


def find_named(conn: sdk_connection.Connection, collection: Collection, name: str, domain: str) -> Json | None:
    """The project, user or group named ``name`` in the domain with id ``domain``; None when absent."""
    rows = _ks(conn, "GET", f"/{collection}", params={"name": name, "domain_id": domain})[collection]
    return dict(rows[0]) if rows else None


def create_object(conn: sdk_connection.Connection, collection: Writable, body: Json) -> Json:
    """Create a project, user, group or domain (``body`` is Keystone's, e.g. with a user's ``password``)."""
    key = SINGULAR[collection]
    return dict(_ks(conn, "POST", f"/{collection}", body={key: body}, log="password" not in body)[key])


def update_object(conn: sdk_connection.Connection, collection: Writable, ident: str, body: Json) -> Json:
    """PATCH the given attributes (a user's ``password`` among them) of a project, user or group."""
    key = SINGULAR[collection]
    return dict(_ks(conn, "PATCH", f"/{collection}/{ident}", body={key: body},
                      log="password" not in body)[key])


def delete_object(conn: sdk_connection.Connection, collection: Writable, ident: str) -> bool:
    """Delete a project, user, group or domain (Keystone refuses an enabled domain: 403, permanent);
    False when it was already gone."""
    return _ks(conn, "DELETE", f"/{collection}/{ident}", missing_ok=True) is not None


def find_role(conn: sdk_connection.Connection, name: str) -> str | None:
    """The id of the global role named ``name``; None when the site has no such role."""
    rows = _ks(conn, "GET", "/roles", params={"name": name})["roles"]
    return next((str(r["id"]) for r in rows if r.get("name") == name and not r.get("domain_id")), None)


def create_role(conn: sdk_connection.Connection, name: str, description: str) -> str:
    """Create a global role and return its id (409, a temporary error, when the name is taken)."""
    body = {"role": {"name": name, "description": description}}
    return str(_ks(conn, "POST", "/roles", body=body)["role"]["id"])


def _grant_url(target: Target, target_id: str, actor: Actor, actor_id: str, role_id: str, inherited: bool) -> str:
    base = f"/{target}/{target_id}/{actor}/{actor_id}/roles/{role_id}"
    return f"/OS-INHERIT{base}/inherited_to_projects" if inherited else base


def has_grant(conn: sdk_connection.Connection, *, target_id: str, actor: Actor, actor_id: str, role_id: str,
              target: Target = "projects", inherited: bool = False) -> bool:
    """Whether the user or group holds the role on the project or domain (directly, not through a
    group); with ``inherited``, the OS-INHERIT grant that reaches the target's projects instead."""
    return _ks(conn, "GET", _grant_url(target, target_id, actor, actor_id, role_id, inherited),
                 missing_ok=True) is not None


def grant(conn: sdk_connection.Connection, *, target_id: str, actor: Actor, actor_id: str, role_id: str,
          target: Target = "projects", inherited: bool = False) -> None:
    """Give the user or group the role on the project or domain (idempotent in Keystone). Keystone
    does not check that the actor exists for an inherited grant: the caller looks it up first."""
    _ks(conn, "PUT", _grant_url(target, target_id, actor, actor_id, role_id, inherited))


def revoke(conn: sdk_connection.Connection, *, target_id: str, actor: Actor, actor_id: str, role_id: str,
           target: Target = "projects", inherited: bool = False) -> bool:
    """Take the role back; False when it was not granted."""
    return _ks(conn, "DELETE", _grant_url(target, target_id, actor, actor_id, role_id, inherited),
                 missing_ok=True) is not None


def admin_role_ids(conn: sdk_connection.Connection, also: Iterable[str] = ()) -> set[str]:
    """The ids of the site's roles that policies read as ``admin`` (oslo.policy compares role names
    without case, so ``Admin`` is one of them), and of the roles named in ``also`` (any case)."""
    names = {"admin", *(str(n).strip().lower() for n in also)}
    rows = _ks(conn, "GET", "/roles")["roles"]
    return {str(r["id"]) for r in rows if str(r.get("name") or "").strip().lower() in names}


def holds_any_role(conn: sdk_connection.Connection, actor: Actor, actor_id: str, role_ids: set[str]) -> bool:
    """Whether the user or group holds one of ``role_ids`` anywhere in the site (a project, a domain,
    the system, inherited or not); a user through its groups too."""
    key = "user.id" if actor == "users" else "group.id"
    for role_id in sorted(role_ids):
        found = _ks(conn, "GET", "/role_assignments", params={key: actor_id, "role.id": role_id})
        if found.get("role_assignments"):
            return True
    if actor == "users" and role_ids:
        groups = _ks(conn, "GET", f"/users/{actor_id}/groups")["groups"]
        return any(holds_any_role(conn, "groups", str(g["id"]), role_ids) for g in groups)
    return False


def in_group(conn: sdk_connection.Connection, group_id: str, user_id: str) -> bool:
    """Whether the user is a member of the group (False too when either is gone)."""
    return _ks(conn, "GET", f"/groups/{group_id}/users/{user_id}", missing_ok=True) is not None


def add_to_group(conn: sdk_connection.Connection, group_id: str, user_id: str) -> None:
    _ks(conn, "PUT", f"/groups/{group_id}/users/{user_id}")


def remove_from_group(conn: sdk_connection.Connection, group_id: str, user_id: str) -> bool:
    """Remove the membership; False when there was none."""
    return _ks(conn, "DELETE", f"/groups/{group_id}/users/{user_id}", missing_ok=True) is not None


def password_works(conn: sdk_connection.Connection, user_id: str, password: str) -> bool:
    """Whether the site's Keystone accepts ``password`` for the user (an unscoped token request made
    without Skyfleet's own token). False on 401: wrong password, or the user is disabled."""
    body = {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": {"id": user_id, "password": password}}}}}
    with site_call():
        response = conn.identity.request("/auth/tokens", "POST", json=body, authenticated=False,
                                         raise_exc=False, log=False)  # keystoneauth would log the body
    if response.status_code == 401:
        return False
    if response.status_code >= 400:
        raise from_status(response.status_code, response.text[:500])
    return True
