"""/v1/keypairs, /v1/flavors, /v1/security-groups: desired resources, declared once, converged on
every placed site by the engine. Writes answer 202 with the operation converging the resource;
reads show each site's binding (in-sync, out-of-sync, pending, failed with the site's error, or
unknown for an offline site). Keypairs and security groups belong to the caller's project; flavors
are fleet-wide and only fleet admins change them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from skyfleet.api.auth import Principal, require_admin
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
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


def caller_of(principal: Principal) -> service.Caller:
    return service.Caller(user_id=principal.user_id, user_name=principal.user_name,
                          project_id=principal.project_id, project_name=principal.project_name,
                          is_admin=principal.is_admin, real_user=principal.user_id != "noauth")


def check_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec normalised by the kind's payload model; 400 with the reason otherwise."""
    unknown = set(spec) - set(SPEC_FIELDS[kind])
    if unknown:
        raise Invalid(f"unknown field(s) in spec: {sorted(unknown)}; allowed: {list(SPEC_FIELDS[kind])}")
    normalised = validate_payload(service.TASK_KIND[kind], spec)
    return {k: normalised[k] for k in SPEC_FIELDS[kind] if k in normalised}


def build_router(kind: str, path: str) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{path}", tags=["sync"])
    admin_only = kind == "flavor"

    @router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def create(body: ResourceCreate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        if admin_only:
            require_admin(principal, "publishing a flavor")
        spec = check_spec(kind, body.spec)
        now = utcnow()
        with transaction(runtime.factory) as session:
            service.validate_placement(session, body.placement)
            resource = service.create(session, kind=kind, data=body, spec=spec, caller=caller_of(principal),
                                      now=now)
            conv.converge(session, resource, now=now, user_id=principal.user_id)
            out = conv.render(session, resource, conv.bindings_of(session, resource))
        runtime.wake()
        return out

    @router.get("", response_model=ResourceList)
    def list_(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              marker: str | None = None) -> ResourceList:
        with transaction(runtime.factory) as session:
            rows, next_marker = service.list_resources(session, kind=kind, caller=caller_of(principal),
                                                       limit=limit, marker=marker)
            now = utcnow()
            folded = [(r, conv.fold(session, r, now=now)) for r in rows]  # may finish pending deletes
            return ResourceList(resources=[conv.render(session, r, b) for r, b in folded if r not in session.deleted],
                                next_marker=next_marker)

    @router.get("/{ref}", response_model=ResourceOut)
    def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        with transaction(runtime.factory) as session:
            resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal))
            bindings = conv.fold(session, resource, now=utcnow())
            if resource in session.deleted:
                raise NotFound(f"desired {kind} {ref!r} was deleted from every site")
            return conv.render(session, resource, bindings)

    @router.patch("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def patch(ref: str, body: ResourceUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
        if admin_only:
            require_admin(principal, "changing a flavor")
        now = utcnow()
        with transaction(runtime.factory) as session:
            resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), for_update=True)
            service.update(session, resource=resource, data=body,
                           spec=check_spec(kind, {**resource.spec, **body.spec}) if body.spec else None, now=now)
            conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
            out = conv.render(session, resource, conv.bindings_of(session, resource))
        runtime.wake()
        return out

    @router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
    def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
               purge: Annotated[bool, Query(description="also delete copies Skyfleet did not create")] = False,
               ) -> ResourceOut | Response:
        if admin_only:
            require_admin(principal, "deleting a flavor")
        now = utcnow()
        with transaction(runtime.factory) as session:
            resource = service.get(session, kind=kind, ref=ref, caller=caller_of(principal), for_update=True)
            resource.state, resource.updated_at = DELETING, now
            resource.options = {**resource.options, "purge": purge}
            conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
            if resource in session.deleted:
                return Response(status_code=status.HTTP_204_NO_CONTENT)
            out = conv.render(session, resource, conv.bindings_of(session, resource))
        runtime.wake()
        return out

    return router


routers = [build_router("keypair", "keypairs"), build_router("flavor", "flavors"),
           build_router("security_group", "security-groups")]
