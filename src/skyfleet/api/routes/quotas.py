"""/v1/quotas and /v1/quota-classes: global limits per project, defaults, classes, usage per site.

Tenants read their own project's quota and usage; admins read and change all. Writes change intent
only; the per-site limits follow through the engine (``POST /v1/quotas/{project}/sync`` now, or
the periodic quota round).
"""

from __future__ import annotations

from fastapi import APIRouter, status

from skyfleet.api.auth import require_admin
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.routes.projects import check_project_access
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.schemas import ClassList, ClassOut, ClassUpdate, Limits, QuotaOut, QuotaUpdate, UsageOut
from skyfleet.domains.quotas.usage import usage_report
from skyfleet.reconcile import quota as rounds

router = APIRouter(tags=["quotas"])


@router.get("/v1/quotas/defaults", response_model=dict[str, int])
def get_defaults(runtime: RuntimeDep, principal: PrincipalDep) -> Limits:
    """Limits of every project without class or override (-1: unlimited)."""
    with transaction(runtime.factory) as session:
        return quotas.defaults(session)


@router.put("/v1/quotas/defaults", response_model=dict[str, int])
def set_defaults(body: ClassUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> Limits:
    """Change the defaults (admins): the quota class ``default``."""
    require_admin(principal, "changing the default quotas")
    with transaction(runtime.factory) as session:
        return quotas.set_class(session, name=quotas.DEFAULT_CLASS, limits=body.limits).limits


@router.get("/v1/quota-classes", response_model=ClassList)
def list_classes(runtime: RuntimeDep, principal: PrincipalDep) -> ClassList:
    with transaction(runtime.factory) as session:
        return ClassList(classes=quotas.list_classes(session))


@router.get("/v1/quota-classes/{name}", response_model=ClassOut)
def get_class(name: str, runtime: RuntimeDep, principal: PrincipalDep) -> ClassOut:
    with transaction(runtime.factory) as session:
        return quotas.get_class(session, name)


@router.put("/v1/quota-classes/{name}", response_model=ClassOut)
def set_class(name: str, body: ClassUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> ClassOut:
    """Create a class or merge limits into it (admins)."""
    require_admin(principal, "changing a quota class")
    with transaction(runtime.factory) as session:
        return quotas.set_class(session, name=name, limits=body.limits)


@router.delete("/v1/quota-classes/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_class(name: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    require_admin(principal, "deleting a quota class")
    with transaction(runtime.factory) as session:
        quotas.delete_class(session, name=name)


@router.get("/v1/quotas/{project_id}", response_model=QuotaOut)
def get_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> QuotaOut:
    """Effective global limits of the project, with its class, overrides, mode and policy."""
    check_project_access(principal, project_id)
    with transaction(runtime.factory) as session:
        return quotas.get_quota(session, project_id=project_id)


@router.put("/v1/quotas/{project_id}", response_model=QuotaOut)
def set_quota(project_id: str, body: QuotaUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> QuotaOut:
    """Set global limits (merged into the overrides), class, mode or policy (admins)."""
    require_admin(principal, "changing a global quota")
    with transaction(runtime.factory) as session:
        return quotas.set_quota(session, project_id=project_id, data=body)


@router.delete("/v1/quotas/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Stop managing the project's global quota (site limits stay as last written; nothing is deleted)."""
    require_admin(principal, "deleting a global quota")
    with transaction(runtime.factory) as session:
        quotas.delete_quota(session, project_id=project_id)


@router.get("/v1/quotas/{project_id}/usage", response_model=UsageOut)
def get_usage(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> UsageOut:
    """Global and per-site usage and limits from the store, each site with its observed_at."""
    check_project_access(principal, project_id)
    with transaction(runtime.factory) as session:
        return usage_report(session, project_id=project_id)


@router.post("/v1/quotas/{project_id}/sync", status_code=status.HTTP_202_ACCEPTED)
def sync_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, str | None]:
    """Rebalance one project now: write the limits its last observations call for, and collect again."""
    check_project_access(principal, project_id)
    with transaction(runtime.factory) as session:
        out = rounds.sync_project(session, project_id=project_id, home_auth_url=runtime.settings.home_auth_url,
                                  user_id=principal.user_id, now=utcnow())
    runtime.wake()
    return out
