"""The one access decision: may this caller call this route, and ask for this option?

Why it exists: tenancy must be decided once, not re-derived in each route. Every API route runs the
dependency :func:`authorize` (installed on the whole application), which looks the route up in
:data:`POLICY` (policy as data, one row per method and path) and refuses what the caller's level does
not allow. A route missing from the table is refused for everybody, and the RBAC matrix test fails.
Options inside a request that only some callers may use (``owner: site``, ``purge``, flavors through
Kingbird ``os-sync``, live reads) are decided by :func:`require` against :data:`CAPABILITIES`, in the
same module, with the same levels.

Levels, lowest first: ``public`` (no token), ``read`` (a project-scoped token with any role, e.g.
``reader``), ``write`` (a project-scoped token with a role that is not read-only, e.g. ``member``),
``admin`` (a fleet admin: the admin role on the admin project, or system-scoped). Unscoped and
role-less tokens reach no level. Which rows a tenant sees is decided by the services, which filter
by the caller's project; a tenant naming another project in a path gets 403 here.

Domain admins (the admin role on a domain-scoped token) reach no level either: a rule lets them in
with ``domain=True`` (the declared identity routes), and then only inside their own domain. What a
declaration of theirs may name is decided by :func:`check_identity` (403 for another domain, the
admin role, ``create_missing_roles``), and which declarations they see by :func:`identity_scope`,
which the services filter on, as they filter tenants' rows by project (another domain's declaration
is 404, like another tenant's object).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skyfleet.errors import Forbidden, Invalid

if TYPE_CHECKING:
    from skyfleet.api.auth import Principal


class Need(enum.IntEnum):
    PUBLIC = 0
    READ = 1
    WRITE = 2
    ADMIN = 3


@dataclass(frozen=True)
class Rule:
    """What a route needs: a level, the path parameters that must name the caller's own project
    (tenants only), and whether it starts work on many sites (rate limited per caller; a query
    parameter name makes it so only when that parameter is true)."""

    need: Need
    own_project: tuple[str, ...] = ()
    fanout: bool | str = False
    # Kingbird v1.0: the path parameter that names the caller's project in the URL. Any other value
    # that is not a project id is a malformed URL (400, before the level unless ``url_first`` is
    # false, in Kingbird's order); with ``url_strict`` even fleet admins must name their own project.
    url_tenant: str | None = None
    url_strict: bool = False
    url_first: bool = True
    # The configured metrics scrape token (``Authorization: Bearer``, settings.metrics_token) also passes:
    # a Prometheus server holds no Keystone token that lasts.
    scrape_token: bool = False
    # Domain admins also pass, whatever ``need`` says: for declared identity, inside their own domain
    # (the services filter rows by :func:`identity_scope`; :func:`check_identity` checks what is declared).
    domain: bool = False


PUBLIC, READ, WRITE, ADMIN = Rule(Need.PUBLIC), Rule(Need.READ), Rule(Need.WRITE), Rule(Need.ADMIN)
FANOUT_WRITE = Rule(Need.WRITE, fanout=True)
KB = "/v1.0/{tenant}"
KB_SYNC = "/v1.0/{project_id}/os-sync"


def _kb(need: Need, *own: str, fanout: bool = False, first: bool = True) -> Rule:
    return Rule(need, own_project=own, fanout=fanout, url_tenant="tenant", url_first=first)


def _kbs(need: Need, fanout: bool = False) -> Rule:
    return Rule(need, own_project=("project_id",), fanout=fanout, url_tenant="project_id", url_strict=True)


def _sync_rows(path: str, create_need: Need, read: Need = Need.READ, *, domain_reads: bool = False,
               domain_writes: bool = False) -> dict[str, Rule]:
    return {f"POST {path}": Rule(create_need, fanout=True, domain=domain_writes),
            f"GET {path}": Rule(read, domain=domain_reads),
            f"GET {path}/{{ref}}": Rule(read, domain=domain_reads),
            f"PATCH {path}/{{ref}}": Rule(create_need, fanout=True, domain=domain_writes),
            f"DELETE {path}/{{ref}}": Rule(create_need, fanout=True, domain=domain_writes)}


def _identity_rows(path: str) -> dict[str, Rule]:
    """Fleet admins, and domain admins inside their own domain (reads and writes)."""
    return _sync_rows(path, Need.ADMIN, read=Need.ADMIN, domain_reads=True, domain_writes=True)


POLICY: dict[str, Rule] = {
    "GET /": PUBLIC,
    "GET /healthz": PUBLIC,
    # the dashboard's static files: they hold no data (every figure comes from /v1 with the user's token)
    "GET /ui": PUBLIC, "GET /ui/{path}": PUBLIC,
    # sign-in with a password of the home Keystone: no token yet (failures are limited per address)
    "POST /v1/auth/tokens": PUBLIC,
    # the dashboard's session cookie: sign in (as above), who am I (nobody is an answer), sign out
    "POST /v1/auth/session": PUBLIC, "GET /v1/auth/session": PUBLIC, "DELETE /v1/auth/session": PUBLIC,
    # Prometheus metrics name every site and project: fleet admins, or the scrape token
    "GET /metrics": Rule(Need.ADMIN, scrape_token=True),
    # sites: fleet admins only
    "POST /v1/sites": ADMIN, "GET /v1/sites": ADMIN, "GET /v1/sites/{ref}": ADMIN,
    "PATCH /v1/sites/{ref}": ADMIN, "DELETE /v1/sites/{ref}": ADMIN,
    "POST /v1/sites/{ref}/manage": ADMIN, "POST /v1/sites/{ref}/unmanage": ADMIN,
    # events and operations: tenants see their own rows
    "GET /v1/events": READ, "GET /v1/events/stream": READ,
    "GET /v1/operations": READ, "GET /v1/operations/{operation_id}": READ,
    "POST /v1/operations": Rule(Need.ADMIN, fanout=True),
    "POST /v1/operations/{operation_id}/cancel": WRITE,
    "POST /v1/operations/{operation_id}/retry": FANOUT_WRITE,
    # desired resources
    **_sync_rows("/v1/keypairs", Need.WRITE),
    **_sync_rows("/v1/security-groups", Need.WRITE),
    **_sync_rows("/v1/flavors", Need.ADMIN),
    **_sync_rows("/v1/images", Need.WRITE),
    **_sync_rows("/v1/networks", Need.WRITE),
    "POST /v1/images/{ref}/sites/{site}": Rule(Need.WRITE, fanout=True),
    "POST /v1/images/{ref}/rollout/{action}": Rule(Need.WRITE, fanout=True),
    "POST /v1/images/{ref}/rollback": Rule(Need.WRITE, fanout=True),
    "PUT /v1/images/{ref}/file": WRITE,
    # servers booted through Skyfleet: the caller's project's own
    "POST /v1/servers": FANOUT_WRITE, "GET /v1/servers": READ, "GET /v1/servers/{server_id}": READ,
    "DELETE /v1/servers/{server_id}": WRITE, "POST /v1/servers/{server_id}/action": WRITE,
    "GET /v1/servers/{server_id}/console": Rule(Need.READ, fanout=True),  # live reads of one site
    "GET /v1/servers/{server_id}/actions": Rule(Need.READ, fanout=True),
    # declared identity: fleet admins; domain admins inside their own domain (they read their own
    # domain's declaration but never declare, change or remove a domain)
    **_sync_rows("/v1/identity/domains", Need.ADMIN, read=Need.ADMIN, domain_reads=True),
    **_identity_rows("/v1/identity/projects"),
    **_identity_rows("/v1/identity/users"),
    **_identity_rows("/v1/identity/groups"),
    "PUT /v1/identity/role-assignments": Rule(Need.ADMIN, fanout=True, domain=True),
    "GET /v1/identity/role-assignments": Rule(Need.ADMIN, domain=True),
    "GET /v1/identity/role-assignments/{ref}": Rule(Need.ADMIN, domain=True),
    "DELETE /v1/identity/role-assignments/{ref}": Rule(Need.ADMIN, fanout=True, domain=True),
    # Kingbird os-sync: the URL names the caller's project (fleet admins' too, as in Kingbird)
    f"POST {KB_SYNC}": _kbs(Need.WRITE, fanout=True),
    f"GET {KB_SYNC}": _kbs(Need.READ),
    f"GET {KB_SYNC}/active": _kbs(Need.READ),
    f"GET {KB_SYNC}/{{job_id}}": _kbs(Need.READ),
    f"DELETE {KB_SYNC}/{{job_id}}": _kbs(Need.WRITE),
    # project mappings
    "GET /v1/projects/{project_id}/mappings": Rule(Need.READ, own_project=("project_id",)),
    "PUT /v1/projects/{project_id}/mappings/{site}": ADMIN,
    "DELETE /v1/projects/{project_id}/mappings/{site}": ADMIN,
    # global quota
    "GET /v1/quotas/defaults": READ, "PUT /v1/quotas/defaults": ADMIN,
    "GET /v1/quota-classes": READ, "GET /v1/quota-classes/{name}": READ,
    "PUT /v1/quota-classes/{name}": ADMIN, "DELETE /v1/quota-classes/{name}": ADMIN,
    "GET /v1/quotas/{project_id}": Rule(Need.READ, own_project=("project_id",)),
    "PUT /v1/quotas/{project_id}": ADMIN, "DELETE /v1/quotas/{project_id}": ADMIN,
    "GET /v1/quotas/{project_id}/usage": Rule(Need.READ, own_project=("project_id",)),
    "POST /v1/quotas/{project_id}/sync": Rule(Need.ADMIN, fanout=True),
    # Kingbird quota: the URL's tenant is the caller's project (any project id for fleet admins), the
    # target too for tenants; a PUT checks the level first, as Kingbird does
    f"GET {KB}/os-quota-sets/defaults": _kb(Need.READ, "tenant"),
    f"GET {KB}/os-quota-sets/{{target}}": _kb(Need.READ, "tenant", "target"),
    f"PUT {KB}/os-quota-sets/{{target}}": _kb(Need.ADMIN, first=False),
    f"DELETE {KB}/os-quota-sets/{{target}}": _kb(Need.ADMIN),
    f"GET {KB}/os-quota-sets/{{target}}/detail": _kb(Need.READ, "tenant", "target", fanout=True),  # live read
    f"PUT {KB}/os-quota-sets/{{target}}/sync": _kb(Need.ADMIN, fanout=True, first=False),
    f"GET {KB}/os-quota-class-sets/{{name}}": _kb(Need.READ, "tenant"),
    f"PUT {KB}/os-quota-class-sets/{{name}}": _kb(Need.ADMIN),
    f"DELETE {KB}/os-quota-class-sets/{{name}}": _kb(Need.ADMIN),
    # the global view
    "GET /v1/inventory/summary": READ,
    # indicator series name sites and their capacity, like the summary's capacity: fleet admins only
    # tenants: only their own project's quota series (indicator_projects decides, the service filters)
    "GET /v1/indicators": READ, "GET /v1/indicators/names": ADMIN,
    "POST /v1/inventory/refresh": Rule(Need.ADMIN, fanout=True),
    "GET /v1/inventory/{kind}": Rule(Need.READ, fanout="live"),
    # the address view (tenants: their project's rows) and routing domains (tenants: their project's)
    "GET /v1/addresses": READ, "GET /v1/addresses/summary": READ, "GET /v1/addresses/conflicts": READ,
    # a routing domain change recomputes the fleet's conflicts: rate limited like work on sites
    "POST /v1/routing-domains": FANOUT_WRITE, "GET /v1/routing-domains": READ,
    "GET /v1/routing-domains/{ref}": READ,
    "PATCH /v1/routing-domains/{ref}": FANOUT_WRITE, "DELETE /v1/routing-domains/{ref}": FANOUT_WRITE,
    # a routing domain's IPsec mesh: work on every site of the network, rate limited like it
    "POST /v1/routing-domains/{ref}/vpn": FANOUT_WRITE, "GET /v1/routing-domains/{ref}/vpn": READ,
    "DELETE /v1/routing-domains/{ref}/vpn": FANOUT_WRITE,
    "POST /v1/routing-domains/{ref}/vpn/rotate-key": FANOUT_WRITE,
    # global IPAM: tenants' pools are their project's; shared pools are created by fleet admins
    "POST /v1/address-pools": WRITE, "GET /v1/address-pools": READ, "GET /v1/address-pools/{ref}": READ,
    "DELETE /v1/address-pools/{ref}": WRITE,
    "POST /v1/address-pools/{ref}/allocations": WRITE, "GET /v1/address-pools/{ref}/allocations": READ,
    "DELETE /v1/address-pools/{ref}/allocations/{allocation_id}": WRITE,
    # placement: where the caller can run, from the store (no fan-out)
    "GET /v1/locations": READ,
}

# Options inside requests, by the level they need.
CAPABILITIES: dict[str, Need] = {
    "sync.owner_site": Need.ADMIN,  # a keypair owned by the site credential's own user
    "sync.purge": Need.ADMIN,  # delete copies Skyfleet did not create
    "sync.flavor": Need.ADMIN,  # flavors, by /v1/flavors or Kingbird os-sync
    "flavor.details": Need.ADMIN,  # a flavor's extra specs and access list
    "image.public": Need.ADMIN,  # an image every project of every site sees
    "inventory.any_project": Need.ADMIN,  # rows of every project, capacity, site errors
    "indicators.sites": Need.ADMIN,  # per-site indicator series, and every project's quota series
    "inventory.live": Need.READ,  # ask one site directly (rate limited as fan-out)
    "identity.create_missing_roles": Need.ADMIN,  # create a role a site lacks (global roles)
}


WHO = {Need.PUBLIC: "everybody", Need.READ: "project-scoped tokens with a role",
       Need.WRITE: "roles that may write (not reader-only)",
       Need.ADMIN: "fleet admins (the admin role on the admin project)"}


def level(principal: Principal) -> Need:
    """The highest level ``principal`` reaches (PUBLIC when it reaches none)."""
    if principal.is_admin:
        return Need.ADMIN
    if not principal.roles or principal.project_id is None:
        return Need.PUBLIC
    return Need.READ if principal.read_only else Need.WRITE


def refusal(principal: Principal) -> str:
    """Why a caller without the level was refused, naming only its own token's facts."""
    if principal.domain_admin:
        return (f"your token is a domain admin's of domain {principal.domain_name!r}, which reaches only the "
                "declared identity of that domain")
    if principal.domain_id is not None and not principal.is_admin:
        return (f"your token is scoped to domain {principal.domain_name!r} without the admin role there "
                f"(roles {list(principal.roles)})")
    if principal.project_id is None and not principal.is_admin:
        return "the token is not scoped to a project; ask Keystone for a project-scoped token"
    if not principal.roles:
        return "the token carries no role on its project"
    return f"your token has roles {list(principal.roles)} on project {principal.project_name or principal.project_id}"


def decide(principal: Principal, rule: Rule, path_params: dict[str, str], what: str) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may call a route with ``rule`` (:class:`Invalid`
    for a Kingbird URL that does not name a project)."""
    reached = level(principal)
    if rule.url_tenant and rule.url_first:
        check_url_tenant(principal, rule, path_params)
    if reached < rule.need and not (rule.domain and principal.domain_admin):
        who = WHO[rule.need] + (" or domain admins (the admin role on a domain-scoped token)" if rule.domain else "")
        raise Forbidden(f"{what} is reserved to {who}; {refusal(principal)}")
    if rule.url_tenant and not rule.url_first:
        check_url_tenant(principal, rule, path_params)
    if reached < Need.ADMIN:
        for name in rule.own_project:
            value = path_params.get(name)
            if value is not None and value != principal.project_id:
                raise Forbidden(f"{what}: the {name} in the path is not the project of your token")


def is_project_id(value: str) -> bool:
    """Whether ``value`` looks like a Keystone project id (a UUID, with or without dashes)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def check_url_tenant(principal: Principal, rule: Rule, path_params: dict[str, str]) -> None:
    """Kingbird's URL rule: the tenant in the path is the caller's project; otherwise it must at least
    be a project id (Invalid), and with ``url_strict`` (os-sync) it must be the caller's own even for
    admins. A tenant naming another project id is left to the ``own_project`` check (403)."""
    value = path_params.get(rule.url_tenant or "")
    if value is None or value == principal.project_id:
        return
    if not is_project_id(value):
        raise Invalid(f"invalid request URL: the {rule.url_tenant} in the path is not a project id")
    if rule.url_strict and principal.project_id is not None and principal.is_admin:
        raise Invalid("invalid request URL: the project in the URL must be the project of your token")


def require(principal: Principal, capability: str, what: str) -> None:
    """Raise :class:`Forbidden` unless ``principal`` reaches the level ``capability`` needs."""
    need = CAPABILITIES[capability]
    if level(principal) < need:
        raise Forbidden(f"{what} is reserved to {WHO[need]}; {refusal(principal)}")


def allows(principal: Principal, capability: str) -> bool:
    """Whether ``principal`` may use ``capability`` (for answers that show more to admins)."""
    return level(principal) >= CAPABILITIES[capability]


def row_scope(principal: Principal) -> str | None:
    """The project whose rows ``principal`` reads: None (every project) for fleet admins, else its own
    (``-``, which matches nothing, when it has none)."""
    return None if principal.is_admin else (principal.project_id or "-")


def indicator_projects(principal: Principal, *, projects: tuple[str, ...], sites: bool,
                       site_names: bool) -> tuple[str, ...]:
    """The projects whose series ``principal`` reads at ``GET /v1/indicators``: those it names (none: every
    one, and every site's series) for fleet admins. Anybody else reads only its own project's quota
    series: naming a site or a per-site indicator is 403 (per-site series name the fleet), naming
    another project 403; naming none means its own."""
    if allows(principal, "indicators.sites"):
        return projects
    if sites or site_names:
        require(principal, "indicators.sites", "per-site indicators (site, or a name outside quota.*)")
    own = row_scope(principal) or "-"
    if any(project != own for project in projects):
        raise Forbidden("project: a project's quota series are read by that project's tokens and fleet admins; "
                        f"{refusal(principal)}")
    return (own,)


NO_DOMAIN = ""  # matches no declaration: a domain name is never empty


def identity_scope(principal: Principal) -> str | None:
    """The domain whose declared identity ``principal`` sees and changes, by name (declarations name
    their domain by name, as the sites' Keystones are searched by name): None (every domain) for fleet
    admins, the token's domain for a domain admin, and no domain at all for anybody else."""
    if principal.is_admin:
        return None
    if principal.domain_admin and principal.domain_name:
        return principal.domain_name
    return NO_DOMAIN


def check_identity(principal: Principal, kind: str, spec: dict[str, Any], *, admin_role: str) -> dict[str, Any]:
    """What a declaration of ``kind`` may say, for ``principal`` (403 otherwise); ``spec`` as sent, before
    the kind normalises it. Returns the spec to use: a domain admin may name its domain by name or by
    its id, and the id is replaced by the name (a site's Keystone knows the domain by name only).

    - ``create_missing_roles`` is for fleet admins (it creates global roles on sites);
    - a domain admin declares only in its own domain (``domain``, default ``Default``); a role
      assignment's user or group and its project may name their domains apart (``user_domain``,
      ``group_domain``, ``project_domain``), and each of those must be its own domain too, so a grant
      never reaches another domain from either side (as Keystone's own domain-manager policy);
    - a domain admin never grants the admin role (nor the configured fleet admin role): that would be
      more power than its own token holds on the sites."""
    if kind == "role_assignment" and spec.get("create_missing_roles"):
        require(principal, "identity.create_missing_roles", "create_missing_roles (creating a role a site lacks)")
    scope = identity_scope(principal)
    if scope is None:
        return spec
    if kind == "domain":
        raise Forbidden("declaring, changing or removing a domain is reserved to fleet admins; "
                        f"{refusal(principal)}")
    named = spec.get("domain") or "Default"
    if principal.domain_id is not None and named == principal.domain_id:
        spec, named = {**spec, "domain": scope}, scope
    if named != scope:
        raise Forbidden(f"domain {str(named)!r}: a domain admin declares only in its own domain "
                        f"({scope!r}); {refusal(principal)}")
    for field in ("user_domain", "group_domain", "project_domain") if kind == "role_assignment" else ():
        other = spec.get(field)
        if other is not None and principal.domain_id is not None and other == principal.domain_id:
            spec, other = {**spec, field: scope}, scope
        if other is not None and other != scope:
            raise Forbidden(f"{field} {str(other)!r}: a domain admin grants only within its own domain "
                            f"({scope!r}), for the user or group as for the project; {refusal(principal)}")
    role = spec.get("role")
    if kind == "role_assignment" and isinstance(role, str) and \
            role.strip().lower() in {"admin", admin_role.strip().lower()}:
        raise Forbidden(f"role {role!r}: a domain admin does not grant the admin role (that would be more "
                        "than its own token holds)")
    return spec
