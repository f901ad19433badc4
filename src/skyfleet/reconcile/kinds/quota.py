"""``quota.collect`` and ``quota.apply``: read a site's quota usage, write its per-site limits.

Both carry the site's own list of projects (each payload is built for its site). A project whose
id on the site is not known yet is found by the mapping rule's last step: same name in the
same-named domain, looked up once per task for all its projects. ``quota.collect`` only reads
(diff is always None; the observations are the task's result). ``quota.apply`` writes absolute
limits, so running it twice leaves the same state. A project missing on the site is reported in the
result, never fatal for the other projects of the task.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack.quota import SERVICES, Endpoint, find_project, read_quota, write_limits
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register


class ProjectRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str = Field(min_length=1, max_length=64)
    remote_project_id: str | None = None
    project_name: str | None = None
    domain_name: str = "Default"
    limits: dict[str, int] = Field(default_factory=dict)


class QuotaPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    projects: list[ProjectRef] = Field(max_length=100_000)
    services: list[str] = Field(default_factory=lambda: list(SERVICES))


def _where(ctx: SiteContext) -> Endpoint:
    return Endpoint(interface=ctx.interface, region=ctx.region)


def resolve(ctx: SiteContext, projects: list[ProjectRef]) -> dict[str, str | None]:
    """Each project's id on the site (None: not found there)."""
    ids: dict[str, str | None] = {}
    for ref in projects:
        if ref.remote_project_id:
            ids[ref.project_id] = ref.remote_project_id
        elif ref.project_name:
            ids[ref.project_id] = find_project(ctx.session(), auth_url=str(ctx.auth.get("auth_url", "")),
                                               name=ref.project_name, domain_name=ref.domain_name)
        else:
            ids[ref.project_id] = None
    return ids


def _missing(ref: ProjectRef) -> str:
    return (f"project {ref.project_name!r} not found in domain {ref.domain_name!r}" if ref.project_name
            else "no mapping and no project name to look up")


def observe_usage(ctx: SiteContext, payload: QuotaPayload) -> dict[str, Any]:
    ids = resolve(ctx, payload.projects)
    out: dict[str, Any] = {}
    for ref in payload.projects:
        remote = ids[ref.project_id]
        if remote is None:
            out[ref.project_id] = {"error": _missing(ref)}
            continue
        usage: dict[str, int] = {}
        limits: dict[str, int] = {}
        for service in payload.services:
            try:
                reading = read_quota(ctx.session(), project_id=remote, service=service, where=_where(ctx))
            except PermanentSiteError as exc:  # e.g. the service is absent: the other services still count
                out.setdefault("_warnings", {})[f"{ref.project_id}/{service}"] = exc.message[:300]
                continue
            usage.update(reading.usage)
            limits.update(reading.limits)
        out[ref.project_id] = {"remote_project_id": remote, "usage": usage, "limits": limits}
    return out


def no_change(_payload: QuotaPayload, _observed: dict[str, Any]) -> Plan | None:
    return None


def observations(observed: dict[str, Any]) -> dict[str, Any]:
    return {"projects": observed}


def observe_targets(ctx: SiteContext, payload: QuotaPayload) -> dict[str, Any]:
    return {"ids": resolve(ctx, payload.projects)}


def plan_writes(payload: QuotaPayload, observed: dict[str, Any]) -> Plan | None:
    writes = [{"project_id": ref.project_id, "remote": observed["ids"][ref.project_id], "limits": ref.limits}
              for ref in payload.projects if ref.limits]
    return {"writes": writes} if writes else None


def apply_writes(ctx: SiteContext, payload: QuotaPayload, plan: Plan) -> dict[str, Any]:
    done: dict[str, Any] = {}
    refs = {ref.project_id: ref for ref in payload.projects}
    for write in plan["writes"]:
        if write["remote"] is None:
            done[write["project_id"]] = {"error": _missing(refs[write["project_id"]])}
            continue
        for service, keys in SERVICES.items():
            values = {k: v for k, v in write["limits"].items() if k in keys}
            if values:
                write_limits(ctx.session(), project_id=write["remote"], service=service, limits=values,
                             where=_where(ctx))
        done[write["project_id"]] = {"remote_project_id": write["remote"], "applied": write["limits"]}
    return {"projects": done}


COLLECT = register(TaskKind(name="quota.collect", description="Read quota usage and limits of projects.",
                            payload=QuotaPayload, observe=observe_usage, diff=no_change,
                            apply=lambda _c, _p, _plan: {}, summary=observations))
APPLY = register(TaskKind(name="quota.apply", description="Write per-site quota limits of projects.",
                          payload=QuotaPayload, observe=observe_targets, diff=plan_writes, apply=apply_writes))
