"""/v1/keypairs, /v1/flavors, /v1/security-groups: desired resources, declared once, converged on
every placed site by the engine. Writes answer 202 with the operation converging the resource;
reads show each site's binding (in-sync, out-of-sync, pending, failed with the site's error, or
unknown for an offline site), folding finished tasks into the view without writing anything: the
engine records them when the operation settles. Keypairs and security groups belong to the caller's project; flavors
are fleet-wide and only fleet admins change them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.models import DELETING
from skyfleet.domains.sync.schemas import ResourceCreate, ResourceList, ResourceOut, ResourceUpdate
from skyfleet.errors import Invalid, NotFound
from skyfleet.reconcile.kinds import validate_payload

SPEC_FIELDS = {"keypair": ("name", "public_key"),
               "flavor": ("name", "id", "vcpus", "ram", "disk", "ephemeral", "swap", "rxtx_factor", "is_public",
                          "extra_specs", "access"),
               "security_group": ("name", "description", "rules", "default_egress")}


def caller_of(principal: Principal, home_domain: str | None = None) -> service.Caller:
    """The caller, with the domains of its user and project names: the token's, else ``home_domain``."""
    return service.Caller(user_id=principal.user_id, user_name=principal.user_name,
                          project_id=principal.project_id, project_name=principal.project_name,
                          is_admin=principal.is_admin, real_user=principal.user_id != "noauth",
                          user_domain_name=principal.user_domain_name or home_domain,
                          project_domain_name=principal.project_domain_name or home_domain,
                          identity_domain=access.identity_scope(principal))


def check_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec normalised by the kind's payload model; 400 with the reason otherwise."""
    unknown = set(spec) - set(SPEC_FIELDS[kind])
    if unknown:
        raise Invalid(f"unknown field(s) in spec: {sorted(unknown)}; allowed: {list(SPEC_FIELDS[kind])}")
    normalised = validate_payload(service.TASK_KIND[kind], spec)
    return {k: normalised[k] for k in SPEC_FIELDS[kind] if k in normalised}


def check_options(principal: Principal, *, owner: str = "caller", purge: bool = False) -> None:
    """Options that only fleet admins may ask for (decided by :mod:`skyfleet.api.access`)."""
    if owner == "site":
        access.require(principal, "sync.owner_site", "owner 'site' (a copy owned by the site's own user)")
    if purge:
        access.require(principal, "sync.purge", "purge (deleting copies Skyfleet did not create)")


def shown(principal: Principal, out: ResourceOut) -> ResourceOut | None:
    """What ``principal`` may see of a resource: a tenant sees a flavor only when it is public or its
    project is in the access list, and never its extra specs nor its access list."""
    if out.kind != "flavor" or access.allows(principal, "flavor.details"):
        return out
    granted = {str(a.get("id")) for a in out.spec.get("access") or [] if isinstance(a, dict)}
    if not out.spec.get("is_public", True) and principal.project_id not in granted:
        return None
    spec = {k: v for k, v in out.spec.items() if k not in ("extra_specs", "access")}
    bindings = [b.model_copy(update={"error": "failed on this site" if b.error else None}) for b in out.bindings]
    return out.model_copy(update={"spec": spec, "bindings": bindings})


def list_view(runtime: Any, principal: Principal, kind: str, *, limit: int, marker: str | None) -> ResourceList:
    """A page of desired resources of ``kind`` with each site's binding; the view folds finished tasks
    and writes nothing."""
    with read_only(runtime.factory) as session:
        rows, next_marker = service.list_resources(session, kind=kind, caller=caller_of(principal), limit=limit,
                                                   marker=marker)
        now = utcnow()
        folded = [(r, conv.fold(session, r, now=now)) for r in rows]
        rendered = [shown(principal, conv.render(session, r, b)) for r, b in folded if r not in session.deleted]
        return ResourceList(resources=[r for r in rendered if r is not None], next_marker=next_marker)


def show_view(runtime: Any, principal: Principal, kind: str, ref: str) -> ResourceOut:
    """One desired resource with each site's binding (folded, not written)."""
    with read_only(runtime.factory) as session:
        resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal))
        bindings = conv.fold(session, resource, now=utcnow())
        out = shown(principal, conv.render(session, resource, bindings))
        if resource in session.deleted or out is None:
            raise NotFound(f"no desired {kind} {ref!r}")
        return out


def remove_resource(runtime: Any, principal: Any, kind: str, ref: str, purge: bool,
                    domain: str | None = None) -> ResourceOut | Response:
    """Mark a desired resource deleted and converge it away (204 when nothing is left to undo); ``domain``
    names the domain of a declared project, user or group."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), for_update=True,
                               domain=domain)
        resource.state, resource.updated_at = DELETING, now
        resource.options = {**resource.options, "purge": purge}
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        if resource in session.deleted:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


def build_router(kind: str, path: str) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{path}", tags=["sync"], dependencies=CLEAN_URL)

    @router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def create(body: ResourceCreate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        check_options(principal, owner=body.owner)
        spec = check_spec(kind, body.spec)
        now = utcnow()
        with transaction(runtime.factory) as session:
            service.validate_placement(session, body.placement)
            caller = caller_of(principal, runtime.settings.home_domain_name)
            resource = service.create(session, kind=kind, data=body, spec=spec, caller=caller, now=now)
            conv.converge(session, resource, now=now, user_id=principal.user_id)
            out = conv.render(session, resource, conv.bindings_of(session, resource))
        runtime.wake()
        return out

    @router.get("", response_model=ResourceList)
    def list_(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              marker: str | None = None) -> ResourceList:
        return list_view(runtime, principal, kind, limit=limit, marker=marker)

    @router.get("/{ref}", response_model=ResourceOut)
    def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        return show_view(runtime, principal, kind, ref)

    @router.patch("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def patch(ref: str, body: ResourceUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        now = utcnow()
        with transaction(runtime.factory) as session:
            resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), for_update=True)
            service.update(session, resource=resource, data=body,
                           spec=check_spec(kind, {**resource.spec, **body.spec}) if body.spec else None, now=now)
            conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
            out = conv.render(session, resource, conv.bindings_of(session, resource))
        runtime.wake()
        return out

    @router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut,
                   responses={204: {"description": "Deleted at once: it was on no site."}})
    def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
               purge: Annotated[bool, Query(description="also delete copies Skyfleet did not create")] = False,
               ) -> ResourceOut | Response:
        check_options(principal, purge=purge)
        return remove_resource(runtime, principal, kind, ref, purge)

    return router


routers = [build_router("keypair", "keypairs"), build_router("flavor", "flavors"),
           build_router("security_group", "security-groups")]
