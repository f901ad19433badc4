"""Kingbird v1.0 compatibility: ``/v1.0/{tenant}/os-quota-sets`` and ``os-quota-class-sets``.

Why it exists: existing python-kingbirdclient users (``kingbird quota ...``, ``kingbird quota-class ...``)
can point ``--os-kingbird-url`` at Skyfleet. Same services and rules as ``/v1/quotas``; the shapes,
the resource set and the validation are Kingbird's (its controllers and tests are the reference;
``docs/kingbird.md`` lists where Skyfleet differs on purpose). The URL's tenant is checked by the one
access decision (:mod:`skyfleet.api.access`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.quotas import quota_warnings, sync_with_warnings
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaProject
from skyfleet.domains.quotas.schemas import BUILTIN_DEFAULTS, MAX_LIMIT, QuotaUpdate
from skyfleet.domains.quotas.usage import usage_report
from skyfleet.errors import Invalid, NotFound
from skyfleet.reconcile import quota as rounds

router = APIRouter(prefix="/v1.0/{tenant}", tags=["kingbird"], dependencies=CLEAN_URL)

# Kingbird's resources (its consts NOVA/NEUTRON/CINDER_QUOTA_FIELDS), in the order it lists them.
KINGBIRD_RESOURCES = (
    "metadata_items", "cores", "instances", "ram", "key_pairs", "floating_ips", "fixed_ips", "security_groups",
    "volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
    "network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule",
)
assert set(KINGBIRD_RESOURCES) <= set(BUILTIN_DEFAULTS)


def _shown(limits: dict[str, int]) -> dict[str, int]:
    """Kingbird's resource set only (``server_groups`` is Skyfleet's own: ``/v1/quotas`` shows it)."""
    return {k: limits[k] for k in KINGBIRD_RESOURCES if k in limits}


async def _body(request: Request) -> Any:
    """The JSON body, None when there is none (Kingbird reads bodies of DELETE too)."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise Invalid("the body is not JSON") from exc


BodyDep = Annotated[Any, Depends(_body)]


def _names(value: Any) -> list[str]:
    """Resource names in a body; 400 for a name Kingbird does not know (``utils.validate_quota_limits``)."""
    unknown = sorted(str(k) for k in value if k not in KINGBIRD_RESOURCES)
    if unknown:
        raise Invalid(f"invalid input for quota: unknown resource(s) {unknown}; known: {list(KINGBIRD_RESOURCES)}")
    return [str(k) for k in value]


def _limits(body: Any, key: str) -> dict[str, int]:
    """``{key: {resource: limit}}`` checked as Kingbird does, except that 0 (nothing allowed) and -1
    (unlimited) are OpenStack limits Skyfleet accepts; strings, floats (1e400, Infinity and NaN included),
    booleans, < -1 and > 2**31-1 (Nova's 32-bit column) are 400."""
    raw = body.get(key) if isinstance(body, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise Invalid(f"{key} in body is required: {{\"{key}\": {{resource: limit, ...}}}}")
    _names(raw)
    bad = sorted(str(k) for k, v in raw.items()
                 if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= MAX_LIMIT)
    if bad:
        raise Invalid(f"invalid input for quota limits: {bad} must be integers from -1 (unlimited) to {MAX_LIMIT}")
    return {str(k): int(v) for k, v in raw.items()}


@router.get("/os-quota-sets/defaults")
def defaults(tenant: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    with transaction(runtime.factory) as session:
        return {"quota_set": _shown(quotas.defaults(session))}


@router.get("/os-quota-sets/{target}")
def show(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    with transaction(runtime.factory) as session:
        return {"quota_set": _shown(quotas.get_quota(session, project_id=target).limits)}


def _warn(response: Response, warnings: list[str]) -> None:
    """Warnings as HTTP ``Warning`` headers (code 299, persistent): python-kingbirdclient reads every
    top-level field of an update's answer as a quota set, so there they cannot be a field."""
    for text in warnings:
        response.headers.append("Warning", '299 skyfleet "{}"'.format(text.replace('"', "'")))


@router.put("/os-quota-sets/{target}")
def update(tenant: str, target: str, body: BodyDep, runtime: RuntimeDep, principal: PrincipalDep,
           response: Response) -> dict[str, Any]:
    """Merge the limits into the project's overrides; Kingbird answers with the limits it changed
    (and Skyfleet's ``Warning`` headers say where the project's quota does not apply)."""
    if body is None:
        raise Invalid("body required")
    data = QuotaUpdate(limits=_limits(body, "quota_set"))
    with transaction(runtime.factory) as session:
        quotas.set_quota(session, project_id=target, data=data, home_domain=runtime.settings.home_domain_name)
    _warn(response, quota_warnings(runtime, project_id=target))
    return {target: data.limits}


@router.delete("/os-quota-sets/{target}")
def delete(tenant: str, target: str, body: BodyDep, runtime: RuntimeDep, principal: PrincipalDep) -> Any:
    """Without a body the whole override goes; ``{"quota_set": [names]}`` deletes those resources'
    overrides only (404 when one is not overridden, as Kingbird's database answers)."""
    if body is None:
        with transaction(runtime.factory) as session:
            quotas.delete_quota(session, project_id=target)
        return "Deleted all quota limits for the given project"
    names = body.get("quota_set") if isinstance(body, dict) else None
    if not names or not isinstance(names, list | dict):
        raise Invalid("quota_set in body required: {\"quota_set\": [resource, ...]}")
    names = _names(names)
    with transaction(runtime.factory) as session:
        row = session.get(QuotaProject, target)
        missing = [n for n in names if row is None or n not in row.overrides]
        if missing:
            raise NotFound(f"project quota not found: {target!r} has no override of {missing}")
        assert row is not None
        row.overrides = {k: v for k, v in row.overrides.items() if k not in names}
        row.needs_plan, row.updated_at = True, utcnow()
    return {"Deleted quota limits": names}


@router.get("/os-quota-sets/{target}/detail")
def detail(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep,
           live: bool = True) -> dict[str, Any]:
    """Limits and usage. Like Kingbird, usage is read from the sites now (``?live=false``: the last
    quota round's observations, without calling any site)."""
    with transaction(runtime.factory) as session:
        report = usage_report(session, project_id=target)
    usage = report.usage
    if live:
        usage = rounds.live_usage(runtime.factory, runtime.box, project_id=target,
                                  home_auth_url=runtime.settings.home_auth_url, timeout=runtime.settings.site_timeout,
                                  home_domain=runtime.settings.home_domain_name).usage
    limits = _shown(report.limits)
    return {"quota_set": {"limits": limits, "usage": {k: int(usage.get(k, 0)) for k in limits}}}


@router.put("/os-quota-sets/{target}/sync")
def sync(tenant: str, target: str, runtime: RuntimeDep, principal: PrincipalDep, response: Response) -> str:
    """Rebalance the project now; Kingbird's message as the body, and ``Warning`` headers where the
    project's quota does not apply. A project without a global quota yet starts being managed with
    the defaults, as Kingbird applies its defaults to any project it syncs."""
    with transaction(runtime.factory) as session:
        if session.get(QuotaProject, target) is None:
            quotas.set_quota(session, project_id=target, data=QuotaUpdate(),
                             home_domain=runtime.settings.home_domain_name)
    out = sync_with_warnings(runtime, project_id=target, user_id=principal.user_id)
    _warn(response, out["warnings"])
    runtime.wake()
    return f"triggered quota sync for {target}"


def _class_set(name: str, limits: dict[str, int]) -> dict[str, Any]:
    return {"quota_class_set": {**_shown(limits), "class_name": name}}


@router.get("/os-quota-class-sets/{name}")
def show_class(tenant: str, name: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """A class; one without limits of its own is the defaults (200, as in Kingbird)."""
    with transaction(runtime.factory) as session:
        try:
            limits = quotas.get_class(session, name).limits
        except NotFound:
            limits = quotas.defaults(session)
    return _class_set(name, limits)


@router.put("/os-quota-class-sets/{name}")
def update_class(tenant: str, name: str, body: BodyDep, runtime: RuntimeDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    if body is None:
        raise Invalid("body required")
    limits = _limits(body, "quota_class_set")
    with transaction(runtime.factory) as session:
        return _class_set(name, quotas.set_class(session, name=name, limits=limits).limits)


@router.delete("/os-quota-class-sets/{name}")
def delete_class(tenant: str, name: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Kingbird answers an empty (null) body."""
    with transaction(runtime.factory) as session:
        quotas.delete_class(session, name=name)
