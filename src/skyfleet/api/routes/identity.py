"""/v1/identity/projects, /users, /groups and /role-assignments: Keystone objects declared once and
provisioned into every placed site's own Keystone by the engine (kinds ``sync.project``,
``sync.user``, ``sync.group``, ``sync.role_assignment``), with the bindings, drift audit and
ownership rules of the other desired resources (see docs/identity.md).

Fleet admins, and domain admins inside their own domain (``access.check_identity`` decides what a
declaration may name, the services show a domain admin only its domain's rows). A user's
``password`` is write-only: accepted in ``spec`` on create and patch, sealed at rest, never in an
answer (``options.password_set`` says whether one is set).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of, remove_resource
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.identity import service as identity
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.models import SyncResource
from skyfleet.domains.sync.schemas import ResourceCreate, ResourceList, ResourceOut, ResourceUpdate
from skyfleet.errors import Conflict, Invalid, NotFound
from skyfleet.reconcile.kinds import validate_payload


def allowed_spec(runtime: Any, principal: Principal, kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """:func:`check_spec` of what ``principal`` may declare: checked by ``access`` as sent (403: another
    domain, the admin role, ``create_missing_roles``), then again once normalised."""
    admin_role = runtime.settings.admin_role
    normalised, password = check_spec(kind, access.check_identity(principal, kind, spec, admin_role=admin_role))
    access.check_identity(principal, kind, normalised, admin_role=admin_role)
    return normalised, password


def service_of(runtime: Any) -> tuple[str, str]:
    """Skyfleet's own service user and its project in the home Keystone (never declared)."""
    settings = runtime.settings
    return (settings.home_username, settings.home_project_name) if settings.home_auth_url else ("", "")


def check_spec(kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The spec normalised by the kind's payload model (without the password), and the password."""
    rest, password = identity.split_password(kind, spec)
    if kind == "role_assignment":
        rest = {**rest, "name": identity.role_assignment_name(rest)}
    normalised = validate_payload(service.TASK_KIND[kind], rest)
    if kind == "role_assignment":  # named again from the normalised values (e.g. ``inherited``)
        normalised["name"] = identity.role_assignment_name(normalised)
    fields = (*identity.SPEC_FIELDS[kind], "name")
    optional = ("user_domain", "group_domain", "project_domain")  # stored only when named
    return {k: normalised[k] for k in fields if k in normalised and k != "password"
            and not (k in optional and normalised[k] is None)}, password


def _declare(runtime: Any, principal: Principal, kind: str, body: ResourceCreate) -> ResourceOut:
    spec, password = allowed_spec(runtime, principal, kind, body.spec)
    now = utcnow()
    with transaction(runtime.factory) as session:
        service.validate_placement(session, body.placement)
        placement = body.placement.model_dump(exclude_none=True)
        identity.check_protected(session, kind=kind, spec=spec, placement=placement, service=service_of(runtime))
        caller = caller_of(principal, runtime.settings.home_domain_name)
        resource = service.create(session, kind=kind, data=body, spec=spec, caller=caller, now=now)
        resource.options = {**resource.options, "home_auth_url": runtime.settings.home_auth_url,
                            "admin_role": runtime.settings.admin_role}
        identity.seal_password(resource, runtime.box, password)
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        if kind == "domain":  # what was declared in it before now waits for it instead of failing
            for waiting in identity.objects_in_domain(session, resource.name):
                conv.converge(session, waiting, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


def _change(runtime: Any, principal: Principal, kind: str, ref: str, body: ResourceUpdate,
            domain: str | None = None) -> ResourceOut:
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), for_update=True,
                               domain=domain)
        stored = {k: v for k, v in resource.spec.items() if not (kind == "role_assignment" and k == "name")}
        spec, password = (allowed_spec(runtime, principal, kind, {**stored, **body.spec}) if body.spec
                          else (None, identity.UNSET))
        placement = body.placement.model_dump(exclude_none=True) if body.placement else resource.placement
        identity.check_protected(session, kind=kind, spec=spec or resource.spec, placement=placement,
                                 service=service_of(runtime))
        if _asks_nothing_new(resource, spec, password, placement, body):
            # PUT again, as idempotent clients do: superseding would cancel tasks that may already have
            # made the grant, and the next task would then find it and not count it as Skyfleet's own.
            return conv.render(session, resource, conv.fold(session, resource, now=now))
        identity.track_left_groups(resource, spec)
        resource.options = {**resource.options, "admin_role": runtime.settings.admin_role}
        service.update(session, resource=resource, data=body, spec=spec, now=now)
        identity.seal_password(resource, runtime.box, password)
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


def _asks_nothing_new(resource: SyncResource, spec: dict[str, Any] | None, password: Any,
                      placement: dict[str, Any], body: ResourceUpdate) -> bool:
    return ((spec is None or spec == resource.spec) and password is identity.UNSET
            and placement == resource.placement and not body.force and not body.replace)


def _list(runtime: Any, principal: Any, kind: str, limit: int, marker: str | None,
          domain: str | None = None) -> ResourceList:
    with read_only(runtime.factory) as session:  # the view folds finished tasks; nothing is written
        rows, next_marker = service.list_resources(session, kind=kind, caller=caller_of(principal), limit=limit,
                                                   marker=marker, domain=domain)
        now = utcnow()
        folded = [(r, conv.fold(session, r, now=now)) for r in rows]
        return ResourceList(resources=[conv.render(session, r, b) for r, b in folded if r not in session.deleted],
                            next_marker=next_marker)


def _show(runtime: Any, principal: Any, kind: str, ref: str, domain: str | None = None) -> ResourceOut:
    with read_only(runtime.factory) as session:
        resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), domain=domain)
        bindings = conv.fold(session, resource, now=utcnow())
        if resource in session.deleted:
            raise NotFound(f"no declared {kind} {ref!r}")
        return conv.render(session, resource, bindings)


GONE: dict[int | str, dict[str, Any]] = {204: {"description": "Deleted at once: it was on no site."}}
PURGE = Query(description="delete the objects Skyfleet created (default: disable projects and users)")
IN_DOMAIN = Query(max_length=64, description="the domain the project, user or group is declared in (its name is "
                  "unique only there): needed when the name is declared in several domains")
DomainParam = Annotated[str | None, IN_DOMAIN]


def _same_domain(kind: str, body: ResourceCreate, domain: str | None) -> None:
    """A ``?domain=`` on a declaration must agree with ``spec.domain``: once it was ignored, and a user
    meant for domain B was declared in Default without a word."""
    if domain is None:
        return
    if kind == "domain":
        raise Invalid("domain: a domain is not named within a domain")
    declared = str(body.spec.get("domain") or "Default")
    if domain != declared:
        raise Invalid(f"domain: the query names domain {domain!r} but spec.domain is {declared!r}; "
                      "a declaration is made in its spec.domain")


def build_router(kind: str, path: str) -> APIRouter:
    router = APIRouter(prefix=f"/v1/identity/{path}", tags=["identity"], dependencies=CLEAN_URL)

    @router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def create(body: ResourceCreate, runtime: RuntimeDep, principal: PrincipalDep,
               domain: DomainParam = None) -> ResourceOut:
        _same_domain(kind, body, domain)
        return _declare(runtime, principal, kind, body)

    @router.get("", response_model=ResourceList)
    def list_(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              marker: str | None = None, domain: DomainParam = None) -> ResourceList:
        return _list(runtime, principal, kind, limit, marker, domain)

    @router.get("/{ref}", response_model=ResourceOut)
    def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep, domain: DomainParam = None) -> ResourceOut:
        return _show(runtime, principal, kind, ref, domain)

    @router.patch("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def patch(ref: str, body: ResourceUpdate, runtime: RuntimeDep, principal: PrincipalDep,
              domain: DomainParam = None) -> ResourceOut:
        return _change(runtime, principal, kind, ref, body, domain)

    @router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut, responses=GONE)
    def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
               purge: Annotated[bool, PURGE] = False, domain: DomainParam = None) -> ResourceOut | Response:
        return remove_resource(runtime, principal, kind, ref, purge, domain=domain)

    return router


def assignments_router() -> APIRouter:
    """``PUT`` declares (or re-declares: placement, force and ``create_missing_roles`` are updated) a
    role assignment."""
    kind = "role_assignment"
    router = APIRouter(prefix="/v1/identity/role-assignments", tags=["identity"], dependencies=CLEAN_URL)

    @router.put("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def put(body: ResourceCreate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        spec, _ = allowed_spec(runtime, principal, kind, body.spec)
        with read_only(runtime.factory) as session:
            existing = session.query(SyncResource.id).filter(SyncResource.kind == kind,
                                                             SyncResource.name == spec["name"]).scalar()
        if existing is None:
            try:
                return _declare(runtime, principal, kind, body)
            except Conflict:
                pass  # declared meanwhile by another request: update it
        option = {k: spec[k] for k in ("create_missing_roles",) if k in body.spec}
        update = ResourceUpdate(spec=option or None, placement=body.placement, force=body.force)
        return _change(runtime, principal, kind, spec["name"], update)

    @router.get("", response_model=ResourceList)
    def list_(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              marker: str | None = None) -> ResourceList:
        return _list(runtime, principal, kind, limit, marker)

    @router.get("/{ref}", response_model=ResourceOut)
    def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        return _show(runtime, principal, kind, ref)

    @router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut, responses=GONE)
    def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
               purge: Annotated[bool, PURGE] = False) -> ResourceOut | Response:
        return remove_resource(runtime, principal, kind, ref, purge)

    return router


routers = [build_router("domain", "domains"),
           build_router("project", "projects"), build_router("user", "users"), build_router("group", "groups"),
           assignments_router()]
