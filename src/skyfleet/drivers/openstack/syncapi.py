"""The Nova, Neutron and Keystone calls the sync kinds make (keypairs, flavors, security groups, and
the lookups that map a global project or user onto a site).

Plain REST (``site_http``: keystoneauth's token and endpoints, sent with aiohttp on a shared event
loop), so the microversion and the exact body are explicit (keypairs of another user need compute
2.10). Every function raises only :class:`~skyfleet.errors.SiteError`; "absent" is None, never an exception.
"""

from __future__ import annotations

from typing import Any

from keystoneauth1 import adapter as ks_adapter
from openstack import connection as sdk_connection

from skyfleet.drivers.openstack import site_http
from skyfleet.drivers.openstack.errors import site_call
from skyfleet.drivers.openstack.paging import PAGE, next_params

Json = dict[str, Any]
KEYPAIR_USER_MICROVERSION = "2.10"
KEYPAIR_PAGING_MICROVERSION = "2.35"  # keypair listings of another user, paged (limit, marker)
FLAVOR_SPECS_MICROVERSION = "2.61"  # flavor listings carry each flavor's extra specs


def _call(conn: sdk_connection.Connection, service: str, method: str, url: str, *, body: Json | None = None,
          params: Json | None = None, microversion: str | None = None, missing_ok: bool = False,
          log: bool = True) -> Any:
    """One request; the decoded JSON (or {}), None for a 404 when ``missing_ok``. ``log=False``: not even
    the DEBUG line with the method and path (bodies are never logged, a body may hold a password).
    Sent on the shared aiohttp loop (``site_http``: a fraction of keystoneauth's CPU per call), or through
    keystoneauth when the session holds a client certificate."""
    if site_http.supported(conn):
        status, raw = site_http.request(conn, service, method, url, body=body, params=params,
                                        microversion=microversion, log=log)
        return site_http.decoded(status, raw, missing_ok=missing_ok)
    with site_call():
        adapter: Any = _compute(conn) if service == "compute" else getattr(conn, service)  # may authenticate
        response = adapter.request(url, method, json=body, params=params, microversion=microversion,
                                   raise_exc=False, log=log)
    return site_http.decoded(response.status_code, response.content, missing_ok=missing_ok)


def _listing(conn: sdk_connection.Connection, service: str, url: str, key: str, params: Json, *,
             microversion: str | None = None, marker_key: str = "id") -> list[Json]:
    """Every item of a listing, page after page (a site may cap pages below ``limit``)."""
    items: list[Json] = []
    query: Json | None = {**params, "limit": PAGE}
    while query is not None:
        body = _call(conn, service, "GET", url, params=query, microversion=microversion)
        items += body.get(key) or []
        query = next_params(body, key, query, marker_key=marker_key)
    return items


def _compute(conn: sdk_connection.Connection) -> ks_adapter.Adapter:
    """A plain keystoneauth adapter on Nova's catalog URL (always versioned, /v2.1): unlike
    openstacksdk's compute proxy it runs no version discovery, which is most of a first call's cost
    when a fan-out touches a thousand sites for the first time."""
    return ks_adapter.Adapter(session=conn.session, service_type="compute", interface=conn.config.interface,
                              region_name=conn.config.region_name)


# --- identity ------------------------------------------------------------------------------------

def _domain_id(conn: sdk_connection.Connection, name: str) -> str | None:
    found = _call(conn, "identity", "GET", "/domains", params={"name": name})["domains"]
    return str(found[0]["id"]) if found else None


def find_identity(conn: sdk_connection.Connection, collection: str, *, ident: str | None, name: str | None,
                  domain_name: str | None) -> str | None:
    """The id in this site of a project or user (``collection`` "projects"/"users"): by id first (a
    site sharing the home Keystone), then by name in the same-named domain; None when absent."""
    if ident and _call(conn, "identity", "GET", f"/{collection}/{ident}", missing_ok=True) is not None:
        return ident
    if not name:
        return None
    domain = _domain_id(conn, domain_name or "Default")
    if domain is None:
        return None
    found = _call(conn, "identity", "GET", f"/{collection}", params={"name": name, "domain_id": domain})
    rows = found[collection]
    return str(rows[0]["id"]) if rows else None


def current_ids(conn: sdk_connection.Connection) -> tuple[str, str]:
    """(user id, project id) of the connection's own credential."""
    with site_call():
        return str(conn.current_user_id), str(conn.current_project_id)


# --- keypairs ------------------------------------------------------------------------------------

def get_keypair(conn: sdk_connection.Connection, name: str, *, user_id: str | None) -> Json | None:
    params = {"user_id": user_id} if user_id else None
    found = _call(conn, "compute", "GET", f"/os-keypairs/{name}", params=params,
                  microversion=KEYPAIR_USER_MICROVERSION, missing_ok=True)
    return None if found is None else dict(found["keypair"])


def create_keypair(conn: sdk_connection.Connection, *, name: str, public_key: str, user_id: str | None) -> Json:
    body: Json = {"name": name, "public_key": public_key}
    if user_id:
        body["user_id"] = user_id
    return dict(_call(conn, "compute", "POST", "/os-keypairs", body={"keypair": body},
                      microversion=KEYPAIR_USER_MICROVERSION)["keypair"])


def delete_keypair(conn: sdk_connection.Connection, name: str, *, user_id: str | None) -> bool:
    params = {"user_id": user_id} if user_id else None
    return _call(conn, "compute", "DELETE", f"/os-keypairs/{name}", params=params,
                 microversion=KEYPAIR_USER_MICROVERSION, missing_ok=True) is not None


def list_keypairs(conn: sdk_connection.Connection, *, user_id: str | None) -> dict[str, Json]:
    """Every keypair of ``user_id`` (None: the credential's own user) by name, public keys included:
    one call for the drift audit, however many keypairs it compares."""
    params = {"user_id": user_id} if user_id else {}
    rows = _listing(conn, "compute", "/os-keypairs", "keypairs", params, microversion=KEYPAIR_PAGING_MICROVERSION,
                    marker_key="name")
    return {str(row["keypair"]["name"]): dict(row["keypair"]) for row in rows if "keypair" in row}


# --- flavors -------------------------------------------------------------------------------------

def find_flavor(conn: sdk_connection.Connection, name: str) -> Json | None:
    """The flavor named ``name`` (public or private) with its extra specs and access list."""
    flavors = _listing(conn, "compute", "/flavors/detail", "flavors", {"is_public": "None"})
    flavor = next((f for f in flavors if f.get("name") == name), None)
    if flavor is None:
        return None
    fid = flavor["id"]
    specs = _call(conn, "compute", "GET", f"/flavors/{fid}/os-extra_specs", missing_ok=True) or {}
    flavor["extra_specs"] = dict(specs.get("extra_specs") or {})
    flavor["access"] = []
    if not flavor.get("os-flavor-access:is_public", True):
        access = _call(conn, "compute", "GET", f"/flavors/{fid}/os-flavor-access", missing_ok=True) or {}
        flavor["access"] = sorted(a["tenant_id"] for a in access.get("flavor_access", []))
    return dict(flavor)


def list_flavors(conn: sdk_connection.Connection) -> dict[str, Json]:
    """Every flavor (public and private) by id, with its extra specs (compute 2.61): one listing for the
    drift audit. The access lists of private flavors are not in it."""
    rows = _listing(conn, "compute", "/flavors/detail", "flavors", {"is_public": "None"},
                    microversion=FLAVOR_SPECS_MICROVERSION)
    return {str(f["id"]): dict(f) for f in rows}  # no "extra_specs" key: the site ignored 2.61


def create_flavor(conn: sdk_connection.Connection, body: Json) -> Json:
    return dict(_call(conn, "compute", "POST", "/flavors", body={"flavor": body})["flavor"])


def delete_flavor(conn: sdk_connection.Connection, flavor_id: str) -> bool:
    return _call(conn, "compute", "DELETE", f"/flavors/{flavor_id}", missing_ok=True) is not None


def set_extra_specs(conn: sdk_connection.Connection, flavor_id: str, specs: dict[str, str]) -> None:
    if specs:
        _call(conn, "compute", "POST", f"/flavors/{flavor_id}/os-extra_specs", body={"extra_specs": specs})


def unset_extra_spec(conn: sdk_connection.Connection, flavor_id: str, key: str) -> None:
    _call(conn, "compute", "DELETE", f"/flavors/{flavor_id}/os-extra_specs/{key}", missing_ok=True)


def flavor_access(conn: sdk_connection.Connection, flavor_id: str, project_id: str, *, add: bool) -> None:
    action = "addTenantAccess" if add else "removeTenantAccess"
    _call(conn, "compute", "POST", f"/flavors/{flavor_id}/action", body={action: {"tenant": project_id}})


# --- security groups -----------------------------------------------------------------------------

def find_security_group(conn: sdk_connection.Connection, name: str, project_id: str) -> Json | None:
    found = _call(conn, "network", "GET", "/security-groups",
                  params={"name": name, "project_id": project_id})["security_groups"]
    return dict(found[0]) if found else None


def list_security_groups(conn: sdk_connection.Connection, project_id: str) -> dict[str, Json]:
    """Every security group of a project by id, rules included: one listing for the drift audit."""
    rows = _listing(conn, "network", "/security-groups", "security_groups", {"project_id": project_id})
    return {str(g["id"]): dict(g) for g in rows}


def create_security_group(conn: sdk_connection.Connection, *, name: str, description: str,
                          project_id: str) -> Json:
    body = {"name": name, "description": description, "project_id": project_id}
    return dict(_call(conn, "network", "POST", "/security-groups", body={"security_group": body})["security_group"])


def update_security_group(conn: sdk_connection.Connection, group_id: str, *, description: str) -> None:
    _call(conn, "network", "PUT", f"/security-groups/{group_id}",
          body={"security_group": {"description": description}})


def delete_security_group(conn: sdk_connection.Connection, group_id: str) -> bool:
    return _call(conn, "network", "DELETE", f"/security-groups/{group_id}", missing_ok=True) is not None


def create_rule(conn: sdk_connection.Connection, body: Json) -> Json:
    return dict(_call(conn, "network", "POST", "/security-group-rules",
                      body={"security_group_rule": body})["security_group_rule"])


def delete_rule(conn: sdk_connection.Connection, rule_id: str) -> None:
    _call(conn, "network", "DELETE", f"/security-group-rules/{rule_id}", missing_ok=True)
