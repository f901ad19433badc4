"""Kingbird v1.0 ``os-sync`` compatibility, so python-kingbirdclient's ``sync`` commands work against
Skyfleet: create a job, list the caller's jobs (all or active), show a job's per-target rows, delete
a finished job. A region in Kingbird is a Skyfleet site (by name, or by its region name); rows name
the regions as the request named them. Shapes and status codes are Kingbird's (its controller and
tests are the reference: 400 for a malformed body or job id, 406 for deleting a job in progress);
errors use Skyfleet's error body. Reads never move a job on: the engine starts its copying stage
when the source read settles.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skyfleet.api import access
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.sync import jobs
from skyfleet.domains.text import ShortName
from skyfleet.errors import ApiError, Invalid, NotFound
from skyfleet.reconcile import copies

MAX_RESOURCES = 100  # names per resource set: one read task carries them all
MAX_TARGETS = 1000  # sites per resource set: each gets one task per resource
router = APIRouter(prefix="/v1.0/{project_id}/os-sync", tags=["kingbird"], dependencies=CLEAN_URL)


class ResourceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["keypair", "flavor", "security_group", "image"]
    resources: list[ShortName] = Field(min_length=1, max_length=MAX_RESOURCES)
    source: ShortName
    target: list[ShortName] = Field(min_length=1, max_length=MAX_TARGETS)
    force: bool = False

    @field_validator("force", mode="before")
    @classmethod
    def _text_bool(cls, value: Any) -> Any:  # the client sends str(bool)
        return value.lower() == "true" if isinstance(value, str) else value

    @field_validator("target", mode="before")
    @classmethod
    def _one_target(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class NotAcceptable(ApiError):
    status = 406
    title = "Not Acceptable"


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise Invalid("the body is not JSON") from exc


def _sets(body: Any, principal: Any, max_sets: int) -> list[ResourceSet]:
    """A plain resource set, or a template's ``Sync`` list of them (``--template``), at most ``max_sets``.
    Flavors are refused to non-admins before the rest is looked at, as Kingbird does."""
    if not body:
        raise Invalid("body required")
    raw = body.get("resource_set") if isinstance(body, dict) else None
    if not raw or not isinstance(raw, dict):
        raise Invalid("resource_set required")
    items = raw["Sync"] if isinstance(raw.get("Sync"), list) else [raw]
    if len(items) > max_sets:
        raise Invalid(f"{len(items)} resource sets in one request; at most {max_sets} (each makes one job)")
    if any(isinstance(item, dict) and item.get("resource_type") == "flavor" for item in items):
        access.require(principal, "sync.flavor", "copying flavors")
    try:
        return [ResourceSet.model_validate(item) for item in items]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'resource_set'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise Invalid(f"invalid resource_set: {problems}") from exc


@router.post("")
@router.post("/", include_in_schema=False)
def create_sync(project_id: str, body: Annotated[Any, Depends(_body)], runtime: RuntimeDep,
                principal: PrincipalDep) -> dict[str, Any]:
    """Start a one-shot copy job (one job per resource set; the answer names the last one)."""
    caller, now = caller_of(principal, runtime.settings.home_domain_name), utcnow()
    sets = _sets(body, principal, runtime.settings.sync_max_sets)
    for s in sets:  # as Kingbird: a resource the source does not have is 404 before any job exists
        missing = copies.missing_in_source(runtime.factory, runtime.box, resource_type=s.resource_type,
                                           names=s.resources, source=s.source, caller=caller,
                                           timeout=runtime.settings.site_timeout)
        if missing:
            raise NotFound(f"no {s.resource_type} {missing} in the source region {s.source!r}")
    with transaction(runtime.factory) as session:
        made = [jobs.create_job(session, resource_type=s.resource_type, names=s.resources, source=s.source,
                                targets=s.target, force=s.force, caller=caller, now=now) for s in sets]
        answer = {"job_status": {"id": made[-1].id, "status": jobs.IN_PROGRESS,
                                 "created_at": made[-1].created_at.isoformat()}}
    runtime.wake()
    return answer


def _summaries(runtime: Any, principal: Any, active_only: bool) -> dict[str, Any]:
    now = utcnow()
    out = []
    with read_only(runtime.factory) as session:
        for job in jobs.list_jobs(session, caller=caller_of(principal)):
            if (job.user_id, job.project_id) != (principal.user_id, principal.project_id):
                continue  # as in Kingbird, everyone (fleet admins too) lists their own jobs
            status = jobs.status_of(jobs.rows(session, job, now=now))
            if active_only and status != jobs.IN_PROGRESS:
                continue
            out.append({"id": job.id, "sync_status": status, "created_at": job.created_at.isoformat(),
                        "updated_at": job.updated_at.isoformat()})
    return {"job_set": out}


@router.get("")
@router.get("/", include_in_schema=False)
def list_sync(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    return _summaries(runtime, principal, active_only=False)


@router.get("/active")
def list_active(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    return _summaries(runtime, principal, active_only=True)


def _job_id(job_id: str) -> str:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise Invalid(f"bad request: job id {job_id!r} is not a UUID") from None
    return job_id


@router.get("/{job_id}")
def show_sync(project_id: str, job_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    now, job_id = utcnow(), _job_id(job_id)
    with read_only(runtime.factory) as session:
        job = jobs.get_job(session, job_id, caller=caller_of(principal))
        found = jobs.rows(session, job, now=now)
    return {"job_set": found}


@router.delete("/{job_id}", responses={406: {"description": "The job is still in progress (as Kingbird)."}})
def delete_sync(project_id: str, job_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> str:
    now, job_id = utcnow(), _job_id(job_id)
    with transaction(runtime.factory) as session:
        job = jobs.get_job(session, job_id, caller=caller_of(principal))
        if jobs.status_of(jobs.rows(session, job, now=now)) == jobs.IN_PROGRESS:
            raise NotAcceptable(f"action not supported while sync is in progress: job {job_id}")
        jobs.delete_job(session, job, now=now)
    return f"job {job_id} deleted from the database."
