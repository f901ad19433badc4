"""Kingbird v1.0 compatibility: ``/v1.0/{tenant}/os-quota-sets`` and ``os-quota-class-sets``.

Why it exists: existing python-kingbirdclient users (``kingbird quota ...``, ``kingbird quota-class ...``)
can point ``--os-kingbird-url`` at Skyfleet. Same services and rules as ``/v1/quotas``; only the
shapes are Kingbird's (``{"quota_set": {...}}``, every answer 200 as the client expects).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from skyfleet.api.auth import Principal, require_admin
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.routes.projects import check_project_access
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.schemas import QuotaUpdate, check_limits
from skyfleet.domains.quotas.usage import usage_report
from skyfleet.errors import Forbidden, Invalid
from skyfleet.reconcile import quota as rounds

router = APIRouter(prefix="/v1.0/{tenant}", tags=["kingbird"])
QuotaBody = Body(default_factory=dict, description='{"quota_set": {"cores": 40}}')


def _tenant(principal: Principal, tenant: str) -> None:
    if not principal.is_admin and principal.project_id != tenant:
        raise Forbidden(f"the URL's tenant {tenant!r} is not your project {principal.project_id!r}")


def _limits(body: dict[str, Any], key: str) -> dict[str, int]:
    raw = body.get(key)
    if not isinstance(raw, dict) or not raw:
        raise Invalid(f"the body must be {{\"{key}\": {{resource: limit, ...}}}}")
    try:
        return check_limits({str(k): int(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise Invalid(str(exc)) from exc


@router.get("/os-quota-sets/defaults")
def defaults(tenant: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    with transaction(runtime.factory) as session:
        return {"quota_set": quotas.defaults(session)}


@router.get("/os-quota-sets/{target}")
def show(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    check_project_access(principal, target)
    with transaction(runtime.factory) as session:
        return {"quota_set": quotas.get_quota(session, project_id=target).limits}


@router.put("/os-quota-sets/{target}")
def update(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep,
           body: dict[str, Any] = QuotaBody) -> dict[str, Any]:
    _tenant(principal, tenant)
    require_admin(principal, "changing a global quota")
    data = QuotaUpdate(limits=_limits(body, "quota_set"))
    with transaction(runtime.factory) as session:
        return {"quota_set": quotas.set_quota(session, project_id=target, data=data).limits}


@router.delete("/os-quota-sets/{target}")
def delete(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    require_admin(principal, "deleting a global quota")
    with transaction(runtime.factory) as session:
        quotas.delete_quota(session, project_id=target)
    return {}


@router.get("/os-quota-sets/{target}/detail")
def detail(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    check_project_access(principal, target)
    with transaction(runtime.factory) as session:
        report = usage_report(session, project_id=target)
    return {"quota_set": {"limits": report.limits, "usage": report.usage}}


@router.put("/os-quota-sets/{target}/sync")
def sync(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, str | None]:
    _tenant(principal, tenant)
    check_project_access(principal, target)
    with transaction(runtime.factory) as session:
        out = rounds.sync_project(session, project_id=target, home_auth_url=runtime.settings.home_auth_url,
                                  user_id=principal.user_id, now=utcnow())
    runtime.wake()
    return out


@router.get("/os-quota-class-sets/{name}")
def show_class(tenant: str, name: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    with transaction(runtime.factory) as session:
        return {"quota_class_set": quotas.get_class(session, name).limits}


@router.put("/os-quota-class-sets/{name}")
def update_class(tenant: str, name: str, runtime: RuntimeDep, principal: PrincipalDep,
                 body: dict[str, Any] = QuotaBody) -> dict[str, Any]:
    _tenant(principal, tenant)
    require_admin(principal, "changing a quota class")
    limits = _limits(body, "quota_class_set")
    with transaction(runtime.factory) as session:
        return {"quota_class_set": quotas.set_class(session, name=name, limits=limits).limits}


@router.delete("/os-quota-class-sets/{name}")
def delete_class(tenant: str, name: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _tenant(principal, tenant)
    require_admin(principal, "deleting a quota class")
    with transaction(runtime.factory) as session:
        quotas.delete_class(session, name=name)
    return {}
