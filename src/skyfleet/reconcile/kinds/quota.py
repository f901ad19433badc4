"""``quota.collect`` and ``quota.apply``: read a site's quota usage, write its per-site limits.

Both carry the site's own list of projects (each payload is built for its site). A project whose
id on the site is not known yet is found by the mapping rule's last step: same name in the
same-named domain, looked up once per task for all its projects. ``quota.collect`` only reads
(diff is always None; the observations are the task's result). ``quota.apply`` writes absolute
limits, so running it twice leaves the same state. A project missing on the site is reported in the
result, never fatal for the other projects of the task.

A round's collection (``cursors`` given) first asks the site what changed since the previous one
(a few listings per site, however many projects it holds) and reads the quota documents only of
projects that may have changed, are new, had an error, or are due their periodic full read
(``full``). The site's own clock, less a margin, becomes the next cursor; a collection for chosen
projects (``cursors`` None) reads them all and moves no cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.quotas.mapping import UNMAPPED
from skyfleet.drivers.openstack.quota import (
    SERVICES,
    Endpoint,
    KnownProject,
    QuotaReading,
    find_project,
    project_by_id,
)
from skyfleet.drivers.openstack.quota_batch import (
    NOT_IN_CATALOG,
    Hints,
    change_hints,
    digest,
    read_defaults,
    read_many,
    write_many,
)
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register

CURSOR_MARGIN = timedelta(seconds=60)  # changes committed late, or clocks that tick apart, are still seen
HINTED = ("compute", "volume")  # services whose hint is a list of changed projects (network: counts)


class ProjectRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str = Field(min_length=1, max_length=64)
    remote_project_id: str | None = None
    project_name: str | None = None
    domain_name: str = "Default"
    limits: dict[str, int] = Field(default_factory=dict)
    full: bool = True  # read every service whatever the hints say
    network_digest: str | None = None  # the project's Neutron counts at its last check


class QuotaPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    projects: list[ProjectRef] = Field(max_length=100_000)
    services: list[str] = Field(default_factory=lambda: list(SERVICES))
    cursors: dict[str, str] | None = None  # site time of the previous round's collection; None: no hints
    defaults: bool = False  # read the site's quota defaults too (not known yet)


def _where(ctx: SiteContext) -> Endpoint:
    return Endpoint(interface=ctx.interface, region=ctx.region)


@dataclass
class Found:
    """How one project was found on the site: its id there (None: not found), the name and domain
    learned from the site's Keystone when it knew the global id, and whether the site surely does not
    hold it (neither the id nor the name is known there)."""

    remote: str | None
    learned: KnownProject | None = None
    absent: bool = False


def find(ctx: SiteContext, projects: list[ProjectRef]) -> dict[str, Found]:
    """Each project on the site: its known id, else the global id if the site's Keystone knows it
    (regions sharing one Keystone), else the same name in the same-named domain."""
    out: dict[str, Found] = {}
    auth_url = str(ctx.auth.get("auth_url", ""))
    for ref in projects:
        if ref.remote_project_id:
            out[ref.project_id] = Found(ref.remote_project_id)
            continue
        known = project_by_id(ctx.session(), auth_url=auth_url, project_id=ref.project_id)
        if known is not None:
            out[ref.project_id] = Found(known.project_id, learned=known)
        elif ref.project_name:
            remote = find_project(ctx.session(), auth_url=auth_url, name=ref.project_name,
                                  domain_name=ref.domain_name)
            out[ref.project_id] = Found(remote, absent=remote is None)
        else:
            out[ref.project_id] = Found(None)
    return out


def resolve(ctx: SiteContext, projects: list[ProjectRef]) -> dict[str, str | None]:
    """Each project's id on the site (None: not found there)."""
    return {k: v.remote for k, v in find(ctx, projects).items()}


def _missing(ref: ProjectRef) -> str:
    return (f"{UNMAPPED}: no project with id {ref.project_id!r} nor named {ref.project_name!r} in domain "
            f"{ref.domain_name!r}" if ref.project_name
            else f"{UNMAPPED}: no project with id {ref.project_id!r}, and no project name to look up")


def _hints(ctx: SiteContext, payload: QuotaPayload) -> tuple[Hints | None, dict[str, str]]:
    """The change hints and the next cursors (empty when the payload asks for no hints)."""
    if payload.cursors is None:
        return None, {}
    asked = datetime.now(UTC)
    since: dict[str, str | None] = {s: payload.cursors.get(s) for s in HINTED if s in payload.services}
    if "network" in payload.services:
        since["network"] = None
    hints = change_hints(ctx.session(), _where(ctx), since)
    clock = asked
    if hints.clock:
        try:
            clock = parsedate_to_datetime(hints.clock).astimezone(UTC)
        except (TypeError, ValueError):
            clock = asked
    cursor = (clock - CURSOR_MARGIN).isoformat(timespec="seconds").replace("+00:00", "Z")
    return hints, {s: cursor for s in HINTED if s in payload.services}


def _to_read(ref: ProjectRef, remote: str, services: list[str], hints: Hints | None) -> list[str]:
    if hints is None or ref.full:
        return list(services)
    out = []
    for service in services:
        if service == "network":
            if not hints.network_counted or hints.network_digests.get(remote, digest({})) != ref.network_digest:
                out.append(service)
        else:
            changed = hints.changed.get(service)
            if changed is None or remote in changed:
                out.append(service)
    return out


def observe_usage(ctx: SiteContext, payload: QuotaPayload) -> dict[str, Any]:
    found = find(ctx, payload.projects)
    ids = {k: v.remote for k, v in found.items()}
    hints, cursors = _hints(ctx, payload)
    wanted: dict[tuple[str, str], str] = {}  # (remote id, service) -> global project id
    out: dict[str, Any] = {}
    unchanged: list[str] = []
    for ref in payload.projects:
        remote = ids[ref.project_id]
        if remote is None:
            out[ref.project_id] = {"error": _missing(ref), "absent": found[ref.project_id].absent}
            continue
        services = _to_read(ref, remote, payload.services, hints)
        if not services:
            unchanged.append(ref.project_id)
        for service in services:
            wanted[(remote, service)] = ref.project_id
    readings = read_many(ctx.session(), _where(ctx), list(wanted)) if wanted else {}
    warnings: dict[str, str] = {}
    for (remote, service), project_id in wanted.items():
        entry = out.setdefault(project_id, {"remote_project_id": remote, "usage": {}, "limits": {}, "read": []})
        reading = readings[(remote, service)]
        if isinstance(reading, PermanentSiteError):
            if reading.message.startswith(NOT_IN_CATALOG):  # a site without that service: nothing to count
                warnings[service] = reading.message[:300]
            else:  # the next round reads the project in full again
                entry.setdefault("errors", {})[service] = reading.message[:300]
            continue
        assert isinstance(reading, QuotaReading)
        entry["usage"].update(reading.usage)
        entry["limits"].update(reading.limits)
        entry["read"].append(service)
    if hints is not None and hints.network_counted:
        for ref in payload.projects:
            remote = ids[ref.project_id]
            if remote is not None and ref.project_id in out and "error" not in out[ref.project_id]:
                out[ref.project_id]["network_digest"] = hints.network_digests.get(remote, digest({}))
    for project_id, how in found.items():
        if how.learned is not None and project_id in out and "error" not in out[project_id]:
            out[project_id]["project_name"] = how.learned.name
            out[project_id]["domain_name"] = how.learned.domain_name
    full = {ref.project_id for ref in payload.projects if ref.full or hints is None}
    for project_id in full & set(out):
        out[project_id]["full"] = True
    result: dict[str, Any] = {"projects": out, "unchanged": len(unchanged), "read_calls": len(wanted)}
    if cursors:
        result["cursors"] = cursors
    if warnings:
        result["warnings"] = warnings
    if payload.defaults:
        any_id = next((remote for remote in ids.values() if remote), "default")
        result["defaults"] = read_defaults(ctx.session(), _where(ctx), any_id)
    return result


def no_change(_payload: QuotaPayload, _observed: dict[str, Any]) -> Plan | None:
    return None


def observations(observed: dict[str, Any]) -> dict[str, Any]:
    return observed


def observe_targets(ctx: SiteContext, payload: QuotaPayload) -> dict[str, Any]:
    return {"ids": resolve(ctx, payload.projects)}


def plan_writes(payload: QuotaPayload, observed: dict[str, Any]) -> Plan | None:
    writes = [{"project_id": ref.project_id, "remote": observed["ids"][ref.project_id], "limits": ref.limits}
              for ref in payload.projects if ref.limits]
    return {"writes": writes} if writes else None


def apply_writes(ctx: SiteContext, payload: QuotaPayload, plan: Plan) -> dict[str, Any]:
    done: dict[str, Any] = {}
    refs = {ref.project_id: ref for ref in payload.projects}
    writes: dict[tuple[str, str], dict[str, int]] = {}
    for write in plan["writes"]:
        if write["remote"] is None:
            done[write["project_id"]] = {"error": _missing(refs[write["project_id"]])}
            continue
        for service, keys in SERVICES.items():
            values = {k: v for k, v in write["limits"].items() if k in keys}
            if values:
                writes[(write["remote"], service)] = values
    results = write_many(ctx.session(), _where(ctx), writes) if writes else {}
    failed = {remote: f"{service}: {result.message[:300]}" for (remote, service), result in results.items()
              if isinstance(result, PermanentSiteError)}
    for write in plan["writes"]:
        if write["remote"] is None:
            continue
        if write["remote"] in failed:
            done[write["project_id"]] = {"error": failed[write["remote"]]}
        else:
            done[write["project_id"]] = {"remote_project_id": write["remote"], "applied": write["limits"]}
    return {"projects": done}


COLLECT = register(TaskKind(name="quota.collect", description="Read quota usage and limits of projects.",
                            payload=QuotaPayload, observe=observe_usage, diff=no_change,
                            apply=lambda _c, _p, _plan: {}, summary=observations))
APPLY = register(TaskKind(name="quota.apply", description="Write per-site quota limits of projects.",
                          payload=QuotaPayload, observe=observe_targets, diff=plan_writes, apply=apply_writes))
