"""Desired resources and their bindings: declare, change, delete, converge, fold task outcomes.

Keyword-only functions over an explicit session; the caller commits. ``converge`` turns a resource
into one engine operation (ensure on each placed site, delete on each site that left the
placement) and points every binding at its task; ``fold`` copies finished task results back into
the bindings (remote id, ownership, status). Ownership is only ever learnt from a task that created
the copy, so a delete never reaches what Skyfleet adopted unless ``purge`` is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload, load_only

from skyfleet.domains.pagination import find_marker, text_marker
from skyfleet.domains.selectors import parse_selector
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import ACTIVE, DELETING, SyncResource
from skyfleet.domains.sync.schemas import Placement, ResourceCreate, ResourceUpdate
from skyfleet.errors import Conflict, Invalid, NotFound

TASK_KIND = {"keypair": "sync.keypair", "flavor": "sync.flavor", "security_group": "sync.security_group",
             "project": "sync.project", "user": "sync.user", "group": "sync.group",
             "role_assignment": "sync.role_assignment", "domain": "sync.domain", "image": "sync.image",
             "network": "sync.network", "vpn_mesh": "vpn.mesh"}
#: Kinds that belong to the fleet, not to a project (scope ""): flavors and declared identity.
FLEET_KINDS = frozenset({"flavor", "project", "user", "group", "role_assignment", "domain"})
#: Declared identity: a domain admin sees only the declarations of its own domain (``Caller.identity_domain``).
IDENTITY_KINDS = frozenset({"project", "user", "group", "role_assignment", "domain"})
#: Keystone objects whose name is unique only within their domain: the domain is part of their identity
#: (scope ``domain:<name>`` outside ``Default``, ``""`` in it), so ``alice`` may be declared in two domains.
DOMAIN_SCOPED = frozenset({"project", "user", "group"})
DOMAIN_SCOPE = "domain:"
GONE = ("deleted", "absent", "kept")
#: Site ids or names per query when a placement names its sites (twice as many bound parameters).
REFS_PER_QUERY = 5000


@dataclass(frozen=True)
class Caller:
    """Who declares a resource (from the API principal)."""

    user_id: str | None
    user_name: str | None
    project_id: str | None
    project_name: str | None
    is_admin: bool
    real_user: bool = True  # False in noauth mode: there is no user to map onto sites
    user_domain_name: str | None = None
    project_domain_name: str | None = None
    # the one domain whose declared identity this caller sees (a domain admin's), None for every domain
    # (fleet admins); decided by ``api.access.identity_scope``
    identity_domain: str | None = None

    def owner(self) -> dict[str, Any]:
        """The owner record a desired resource or a job keeps (whose user and project it acts in)."""
        return {"user_id": self.user_id, "user_name": self.user_name, "project_id": self.project_id,
                "project_name": self.project_name, "real_user": self.real_user, "is_admin": self.is_admin,
                "user_domain_name": self.user_domain_name, "project_domain_name": self.project_domain_name}


def create(session: Session, *, kind: str, data: ResourceCreate, spec: dict[str, Any], caller: Caller,
           now: datetime) -> SyncResource:
    """Record a desired resource (``spec`` already validated by its kind)."""
    resource = SyncResource(kind=kind, name=str(spec["name"]), scope=_scope(kind, caller, spec), owner=caller.owner(),
                            spec=spec, placement=data.placement.model_dump(exclude_none=True),
                            options={"force": data.force, "replace": data.replace, "owner": data.owner},
                            state=ACTIVE, generation=1, created_at=now, updated_at=now)
    session.add(resource)
    try:
        session.flush()
    except IntegrityError as exc:
        where = f" in domain {domain_of_scope(resource.scope)!r}" if kind in DOMAIN_SCOPED else ""
        raise Conflict(f"a desired {kind} named {resource.name!r} already exists{where}") from exc
    return resource


def _scope(kind: str, caller: Caller, spec: dict[str, Any]) -> str:
    if kind in DOMAIN_SCOPED:
        return domain_scope(spec.get("domain"))
    return "" if kind in FLEET_KINDS else (caller.project_id or "")


def domain_scope(domain: Any) -> str:
    """The scope of a project, user or group declared in ``domain`` (``Default`` when None)."""
    name = str(domain or "Default")
    return "" if name == "Default" else f"{DOMAIN_SCOPE}{name}"


def domain_of_scope(scope: str) -> str:
    return scope[len(DOMAIN_SCOPE):] if scope.startswith(DOMAIN_SCOPE) else "Default"


def project_of(resource: SyncResource) -> str | None:
    """The resource's scope as a project id (a tenant's project, or a copy job's ``copy:`` scope as
    before), None for the fleet's: a declared identity object's domain is no project."""
    if not resource.scope or resource.scope.startswith(DOMAIN_SCOPE):
        return None
    return resource.scope


def get(session: Session, *, kind: str, ref: str, caller: Caller, for_update: bool = False,
        domain: str | None = None) -> SyncResource:
    """A resource by id or name that the caller may see (tenants: their project's). A project, user or
    group is named within its domain: ``domain`` picks one when the name is declared in several."""
    query = select(SyncResource).where(SyncResource.kind == kind,
                                       (SyncResource.id == ref) | (SyncResource.name == ref))
    if not caller.is_admin and kind not in FLEET_KINDS:
        query = query.where(SyncResource.scope == (caller.project_id or "-"))
    if domain is not None:
        if kind not in DOMAIN_SCOPED:
            raise Invalid(f"domain: a {kind} is not named within a domain")
        query = query.where(SyncResource.scope == domain_scope(domain))
    query = _in_domain(query, kind, caller)
    if for_update:
        query = query.with_for_update()
    rows = list(session.scalars(query))
    if len(rows) > 1 and kind in DOMAIN_SCOPED:
        domains = sorted(domain_of_scope(r.scope) for r in rows)
        raise Conflict(f"{len(rows)} {kind}s are named {ref!r} (in domains {', '.join(domains)}); "
                       f"name the domain (?domain=...) or use the id")
    if len(rows) > 1:
        raise Conflict(f"{len(rows)} {kind}s are named {ref!r} (in several projects); use the id")
    if not rows:
        raise NotFound(f"no desired {kind} {ref!r}" + (f" in domain {domain!r}" if domain is not None else ""))
    return rows[0]


def list_resources(session: Session, *, kind: str, caller: Caller, limit: int,
                   marker: str | None, domain: str | None = None) -> tuple[list[SyncResource], str | None]:
    query = select(SyncResource).where(SyncResource.kind == kind)
    if not caller.is_admin and kind not in FLEET_KINDS:
        query = query.where(SyncResource.scope == (caller.project_id or "-"))
    if domain is not None:
        if kind not in DOMAIN_SCOPED:
            raise Invalid(f"domain: a {kind} is not named within a domain")
        query = query.where(SyncResource.scope == domain_scope(domain))
    query = _in_domain(query, kind, caller)
    ref = text_marker(marker)
    if ref:
        find_marker(session, query.with_only_columns(SyncResource.id).where(SyncResource.id == ref), ref,
                    f"desired {kind}")
        query = query.where(SyncResource.id > ref)
    rows = list(session.scalars(query.order_by(SyncResource.id).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def _in_domain(query: Select[SyncResource], kind: str, caller: Caller) -> Select[SyncResource]:
    """Narrow declared identity to the caller's domain (a domain admin's): a domain by its name, the
    others by their spec's ``domain`` (``Default`` when absent), as tenants' rows are narrowed by project.
    A role assignment across domains is the caller's only when its actor's and its project's domains,
    named apart, are the caller's too."""
    if kind not in IDENTITY_KINDS or caller.identity_domain is None:
        return query
    if kind == "domain":
        return query.where(SyncResource.name == caller.identity_domain)
    named = func.coalesce(SyncResource.spec["domain"].as_string(), "Default")
    query = query.where(named == caller.identity_domain)
    for field in ("user_domain", "group_domain", "project_domain") if kind == "role_assignment" else ():
        apart = func.coalesce(SyncResource.spec[field].as_string(), caller.identity_domain)
        query = query.where(apart == caller.identity_domain)
    return query


def placed_sites(session: Session, placement: dict[str, Any], *, strict: bool = False,
                 light: bool = False) -> list[Site]:
    """The managed sites a placement selects now; an unknown site name is :class:`Invalid` when
    ``strict`` (a request), else skipped (a site deregistered since the resource was declared).

    Named sites are read in one query (a few for thousands of names), not one per name; the sites'
    labels are left to load when asked for. ``light``: only the id, name and managed flag are read
    (any other column loads when asked for): what a converge needs of thousands of sites."""
    if placement.get("sites") is not None:
        refs = list(dict.fromkeys(placement["sites"]))
        rows: list[Site] = []
        for at in range(0, len(refs), REFS_PER_QUERY):
            chunk = refs[at:at + REFS_PER_QUERY]
            rows.extend(session.scalars(_loading(select(Site), light)
                                        .where(or_(Site.id.in_(chunk), Site.name.in_(chunk)))))
        by_id, by_name = {s.id: s for s in rows}, {s.name: s for s in rows}
        found = []
        for ref in refs:
            site = by_id.get(ref) or by_name.get(ref)
            if site is not None:
                found.append(site)
            elif strict:
                raise Invalid(f"placement.sites: no site {ref!r}")
        return [s for s in found if s.managed]
    return list(session.scalars(_loading(_selected(placement), light).order_by(Site.name)))


def _loading(query: Select[tuple[Site]], light: bool) -> Select[tuple[Site]]:
    query = query.options(lazyload(Site.label_rows))
    return query.options(load_only(Site.id, Site.name, Site.managed)) if light else query


def _selected(placement: dict[str, Any]) -> Select[tuple[Site]]:
    filters = sites.SiteFilter(selector=parse_selector(placement.get("selector") or ""),
                               group=placement.get("group"), managed=True)
    query: Select[tuple[Site]] = sites.site_query(filters)
    return query


def validate_placement(session: Session, placement: Placement) -> None:
    """:class:`Invalid` when the placement names a site that does not exist or has a bad selector; reads
    ids and names only (what :func:`placed_sites` would refuse, without loading a site)."""
    data = placement.model_dump(exclude_none=True)
    if data.get("sites") is None:
        session.execute(_selected(data).with_only_columns(Site.id)).all()
        return
    refs = list(dict.fromkeys(data["sites"]))
    known: set[str] = set()
    for at in range(0, len(refs), REFS_PER_QUERY):
        chunk = refs[at:at + REFS_PER_QUERY]
        for site_id, name in session.execute(select(Site.id, Site.name).where(
                or_(Site.id.in_(chunk), Site.name.in_(chunk)))):
            known.update((site_id, name))
    missing = next((ref for ref in refs if ref not in known), None)
    if missing is not None:
        raise Invalid(f"placement.sites: no site {missing!r}")


def update(session: Session, *, resource: SyncResource, data: ResourceUpdate, spec: dict[str, Any] | None,
           now: datetime) -> None:
    """Change a resource (its name is its identity and cannot change); bumps the generation."""
    if resource.state == DELETING:
        raise Conflict(f"{resource.kind} {resource.name!r} is being deleted")
    if spec is not None:
        if spec["name"] != resource.name:
            raise Invalid("spec.name cannot change; delete and declare a new resource")
        if resource.kind in DOMAIN_SCOPED and domain_scope(spec.get("domain")) != resource.scope:
            raise Invalid(f"spec.domain cannot change (a {resource.kind} is named within its domain); delete "
                          "and declare a new one")
        resource.spec = spec
    if data.placement is not None:
        validate_placement(session, data.placement)
        resource.placement = data.placement.model_dump(exclude_none=True)
    options = dict(resource.options)
    for key in ("force", "replace"):
        if getattr(data, key) is not None:
            options[key] = getattr(data, key)
    resource.options = options
    resource.generation += 1
    resource.updated_at = now
