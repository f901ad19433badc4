"""Kingbird v1.0 ``os-sync`` compatibility, so python-kingbirdclient's ``sync`` commands work against
Skyfleet: create a job, list jobs (all or active), show a job's per-target rows, delete a finished
job. A region in Kingbird is a Skyfleet site (by name, or by its region name). Shapes and status
codes (200 everywhere) are those the client expects; errors use Skyfleet's error body.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.routes.sync import caller_of
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.sync import jobs
from skyfleet.errors import Forbidden, Invalid

router = APIRouter(prefix="/v1.0/{project_id}/os-sync", tags=["kingbird"])


class ResourceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["keypair", "flavor", "security_group"]
    resources: list[str] = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, max_length=255)
    target: list[str] = Field(min_length=1, max_length=10_000)
    force: bool = False

    @field_validator("force", mode="before")
    @classmethod
    def _text_bool(cls, value: Any) -> Any:  # the client sends str(bool)
        return value.lower() == "true" if isinstance(value, str) else value

    @field_validator("target", mode="before")
    @classmethod
    def _one_target(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SyncRequest(BaseModel):
    resource_set: dict[str, Any]


def _sets(body: SyncRequest) -> list[ResourceSet]:
    """A plain resource set, or a template's ``Sync`` list of them (``--template``)."""
    raw = body.resource_set
    items = raw["Sync"] if isinstance(raw.get("Sync"), list) else [raw]
    try:
        return [ResourceSet.model_validate(item) for item in items]
    except ValueError as exc:
        raise Invalid(f"invalid resource_set: {exc}") from exc


def _check_project(project_id: str, principal: Any) -> None:
    if not principal.is_admin and principal.project_id != project_id:
        raise Forbidden(f"project {project_id} is not the project of your token")


@router.post("")
@router.post("/", include_in_schema=False)
def create_sync(project_id: str, body: SyncRequest, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Start a one-shot copy job (one job per resource set; the answer names the last one)."""
    _check_project(project_id, principal)
    caller, now = caller_of(principal), utcnow()
    with transaction(runtime.factory) as session:
        made = [jobs.create_job(session, resource_type=s.resource_type, names=s.resources, source=s.source,
                                targets=s.target, force=s.force, caller=caller, now=now) for s in _sets(body)]
        answer = {"job_status": {"id": made[-1].id, "status": jobs.IN_PROGRESS,
                                 "created_at": made[-1].created_at.isoformat()}}
    runtime.wake()
    return answer


def _summaries(runtime: Any, principal: Any, active_only: bool) -> dict[str, Any]:
    now = utcnow()
    out = []
    with transaction(runtime.factory) as session:
        for job in jobs.list_jobs(session, caller=caller_of(principal)):
            jobs.advance(session, job, now=now)
            status = jobs.status_of(jobs.rows(session, job, now=now))
            if active_only and status != jobs.IN_PROGRESS:
                continue
            out.append({"id": job.id, "sync_status": status, "created_at": job.created_at.isoformat(),
                        "updated_at": job.updated_at.isoformat()})
    runtime.wake()
    return {"job_set": out}


@router.get("")
@router.get("/", include_in_schema=False)
def list_sync(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _check_project(project_id, principal)
    return _summaries(runtime, principal, active_only=False)


@router.get("/active")
def list_active(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _check_project(project_id, principal)
    return _summaries(runtime, principal, active_only=True)


@router.get("/{job_id}")
def show_sync(project_id: str, job_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _check_project(project_id, principal)
    now = utcnow()
    with transaction(runtime.factory) as session:
        job = jobs.get_job(session, job_id, caller=caller_of(principal))
        jobs.advance(session, job, now=now)
        found = jobs.rows(session, job, now=now)
    runtime.wake()
    return {"job_set": found}


@router.delete("/{job_id}")
def delete_sync(project_id: str, job_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    _check_project(project_id, principal)
    with transaction(runtime.factory) as session:
        job = jobs.get_job(session, job_id, caller=caller_of(principal))
        jobs.delete_job(session, job, now=utcnow())
    return {}
