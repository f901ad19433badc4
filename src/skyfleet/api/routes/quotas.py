"""/v1/quotas and /v1/quota-classes: global limits per project, defaults, classes, usage per site.

Tenants read their own project's quota and usage; admins read and change all. Writes change intent
only; the per-site limits follow through the engine (``POST /v1/quotas/{project}/sync`` now, or
the periodic quota round).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import mapping
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.schemas import ClassList, ClassOut, ClassUpdate, Limits, QuotaOut, QuotaUpdate, UsageOut
from skyfleet.domains.quotas.usage import usage_report
from skyfleet.reconcile import quota as rounds

router = APIRouter(tags=["quotas"], dependencies=CLEAN_URL)


@router.get("/v1/quotas/defaults", response_model=dict[str, int])
def get_defaults(runtime: RuntimeDep, principal: PrincipalDep) -> Limits:
    """Limits of every project without class or override (-1: unlimited)."""
    with transaction(runtime.factory) as session:
        return quotas.defaults(session)


@router.put("/v1/quotas/defaults", response_model=dict[str, int])
def set_defaults(body: ClassUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> Limits:
    """Change the defaults (admins): the quota class ``default``."""
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
    with transaction(runtime.factory) as session:
        return quotas.set_class(session, name=name, limits=body.limits)


@router.delete("/v1/quota-classes/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_class(name: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    with transaction(runtime.factory) as session:
        quotas.delete_class(session, name=name)


@router.get("/v1/quotas/{project_id}", response_model=QuotaOut)
def get_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> QuotaOut:
    """Effective global limits of the project, with its class, overrides, mode and policy."""
    with transaction(runtime.factory) as session:
        return _with_warnings(session, runtime, quotas.get_quota(session, project_id=project_id))


@router.put("/v1/quotas/{project_id}", response_model=QuotaOut)
def set_quota(project_id: str, body: QuotaUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> QuotaOut:
    """Set global limits (merged into the overrides), class, mode or policy (admins)."""
    with transaction(runtime.factory) as session:
        return _with_warnings(session, runtime, quotas.set_quota(session, project_id=project_id, data=body,
                                                                 home_domain=runtime.settings.home_domain_name))


@router.delete("/v1/quotas/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Stop managing the project's global quota (site limits stay as last written; nothing is deleted)."""
    with transaction(runtime.factory) as session:
        quotas.delete_quota(session, project_id=project_id)


@router.get("/v1/quotas/{project_id}/usage", response_model=UsageOut)
def get_usage(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> UsageOut:
    """Global and per-site usage and limits from the store, each site with its observed_at."""
    with transaction(runtime.factory) as session:
        report = usage_report(session, project_id=project_id)
        report.warnings, report.unmapped_sites = mapping.warnings(
            session, project_id=project_id, home_auth_url=runtime.settings.home_auth_url)
        return report


@router.post("/v1/quotas/{project_id}/sync", status_code=status.HTTP_202_ACCEPTED)
def sync_quota(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Rebalance one project now: write the limits its last observations call for, and collect again.
    ``warnings`` says where the quota does not apply (sites where the project is not mapped)."""
    out = sync_with_warnings(runtime, project_id=project_id, user_id=principal.user_id)
    runtime.wake()
    return out


def _with_warnings(session: Session, runtime: Runtime, out: QuotaOut) -> QuotaOut:
    out.warnings, out.unmapped_sites = mapping.warnings(session, project_id=out.project_id,
                                                        home_auth_url=runtime.settings.home_auth_url)
    return out


def sync_with_warnings(runtime: Runtime, *, project_id: str, user_id: str | None) -> dict[str, Any]:
    """``sync_project`` and the warnings about where the project's quota does not apply."""
    with transaction(runtime.factory) as session:
        out: dict[str, Any] = dict(rounds.sync_project(session, project_id=project_id,
                                                       home_auth_url=runtime.settings.home_auth_url,
                                                       user_id=user_id, now=utcnow()))
        out["warnings"], unmapped = mapping.warnings(session, project_id=project_id,
                                                     home_auth_url=runtime.settings.home_auth_url)
        out["unmapped_sites"] = [u.site_name for u in unmapped]
    return out


def quota_warnings(runtime: Runtime, *, project_id: str) -> list[str]:
    with transaction(runtime.factory) as session:
        return mapping.warnings(session, project_id=project_id, home_auth_url=runtime.settings.home_auth_url)[0]
