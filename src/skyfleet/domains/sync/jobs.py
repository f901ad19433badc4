"""One-shot copies ("copy keypair K from site A to sites B and C"), the model of Kingbird's os-sync.

A job is an engine operation of kind ``sync.copy`` in two stages: first one ``sync.read`` task on the
source site returns the resources' specs; the job's continuation (``advance``, run by the engine in
the transaction that settles the read) then declares each as a one-shot desired resource placed on
the target sites (scope ``copy:<job id>``, never re-converged by the drift audit), which the usual
``sync.*`` kinds create, adopt or refuse exactly like declared resources. Nothing waits for a reader:
reading a job never moves it on. The job's status is read from those bindings. Sites are named by
Skyfleet name or by their region name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations import stages
from skyfleet.domains.operations.models import OPEN_STATES, SUCCEEDED, Operation, Task
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.converge import converge, fold, owner_refs
from skyfleet.domains.sync.models import SyncResource
from skyfleet.domains.sync.service import Caller
from skyfleet.errors import Invalid, NotFound

JOB_KIND = "sync.copy"
IN_PROGRESS, SUCCESS, FAILURE = "IN_PROGRESS", "SUCCESS", "FAILURE"


def find_site(session: Session, ref: str) -> Site:
    """A site by name, else the site whose region is ``ref``; :class:`Invalid` when none."""
    site = session.scalars(select(Site).where(Site.name == ref)).first()
    if site is None:
        site = next((s for s in session.scalars(select(Site)) if s.auth_public.get("region_name") == ref), None)
    if site is None:
        raise Invalid(f"no site or region named {ref!r}")
    return site


def create_job(session: Session, *, resource_type: str, names: list[str], source: str, targets: list[str],
               force: bool, caller: Caller, now: datetime) -> Operation:
    """Record the job and its read task on the source site (flushed, not committed)."""
    src = find_site(session, source)
    asked = {find_site(session, t).name: t for t in dict.fromkeys(targets)}  # site name -> name as asked
    dests = list(asked)
    if src.name in dests:
        raise Invalid(f"the source {source!r} is also a target")
    read: dict[str, Any] = {"resource_type": resource_type, "names": names,
                            **owner_refs(resource_type, caller.owner())}
    job = operations.submit(session, kind="sync.read", targets=[operations.SiteRef(src.id, src.name)],
                            payload=read, user_id=caller.user_id, project_id=caller.project_id, now=now,
                            continuation=JOB_KIND)
    job.kind = JOB_KIND
    job.payload = {**read, "source": src.name, "targets": dests, "force": force, "stage": "reading",
                   "owner": caller.owner(), "asked": {**asked, src.name: source}}
    return job


def get_job(session: Session, job_id: str, *, caller: Caller) -> Operation:
    job = session.get(Operation, job_id)
    if job is None or job.kind != JOB_KIND or (not caller.is_admin and job.project_id != caller.project_id):
        raise NotFound(f"no sync job {job_id!r}")
    return job


def list_jobs(session: Session, *, caller: Caller) -> list[Operation]:
    query = select(Operation).where(Operation.kind == JOB_KIND)
    if not caller.is_admin:
        query = query.where(Operation.project_id == (caller.project_id or "-"))
    return list(session.scalars(query.order_by(Operation.created_at)))


def advance(session: Session, job: Operation, *, now: datetime) -> bool:
    """Once the source was read, declare the copies (idempotent); the job's continuation. True when
    the copies were submitted."""
    payload = dict(job.payload)
    if payload.get("stage") not in ("reading", "failed"):  # failed: the read was retried
        return False
    task = session.scalars(select(Task).where(Task.operation_id == job.id)).first()
    if task is None or task.state in OPEN_STATES:
        return False
    if task.state != SUCCEEDED:
        payload["stage"], payload["error"] = "failed", task.last_error
        job.payload = payload
        return False
    targets = select(Site).where(Site.name.in_(payload["targets"]))
    ids = []
    for spec in (task.result or {}).get("specs", {}).values():
        if payload["resource_type"] == "image":  # Kingbird: a copy keeps the source's id unless forced
            spec = {**spec, "same_id": not payload["force"]}
        resource = SyncResource(kind=payload["resource_type"], name=spec["name"], scope=f"copy:{job.id}",
                                owner=payload["owner"], spec=spec,
                                placement={"sites": [s.name for s in session.scalars(targets)]},
                                options={"force": payload["force"], "one_shot": True, "owner": "caller"},
                                state="active", generation=1, created_at=now, updated_at=now)
        session.add(resource)
        session.flush()
        converge(session, resource, now=now, user_id=job.user_id)
        ids.append(resource.id)
    payload["stage"], payload["resource_ids"] = "copying", ids
    payload.pop("error", None)
    job.payload = payload
    return bool(ids)


def _continue(session: Session, job: Operation, _final: str, now: datetime) -> bool:
    return advance(session, job, now=now)


stages.register(JOB_KIND, _continue)


def rows(session: Session, job: Operation, *, now: datetime) -> list[dict[str, Any]]:
    """One row per (resource, target site): Kingbird's job detail, with the site's error."""
    payload = job.payload
    if payload.get("stage") != "copying":
        status = FAILURE if payload.get("stage") == "failed" else IN_PROGRESS
        return [_row(job, name, payload, target, status, payload.get("error"))
                for name in payload["names"] for target in payload["targets"]]
    out = []
    for resource in session.scalars(select(SyncResource).where(SyncResource.id.in_(payload["resource_ids"]))):
        for binding in fold(session, resource, now=now).values():
            status = {"in-sync": SUCCESS, "failed": FAILURE}.get(binding.status, IN_PROGRESS)
            out.append(_row(job, resource.name, payload, binding.site_name, status, binding.last_error))
    return out


def _row(job: Operation, name: str, payload: dict[str, Any], target: str, status: str,
         error: str | None) -> dict[str, Any]:
    asked = payload.get("asked") or {}  # rows name the regions as the request named them
    return {"id": job.id, "resource": name, "source_region": asked.get(payload["source"], payload["source"]),
            "target_region": asked.get(target, target),
            "resource_type": payload["resource_type"], "sync_status": status, "error": error,
            "created_at": job.created_at.isoformat(), "updated_at": job.updated_at.isoformat()}


def status_of(rows_: list[dict[str, Any]]) -> str:
    states = {r["sync_status"] for r in rows_}
    return IN_PROGRESS if IN_PROGRESS in states or not states else FAILURE if FAILURE in states else SUCCESS


def delete_job(session: Session, job: Operation, *, now: datetime) -> None:
    """Forget a finished job and its one-shot resources (the copies stay in the sites)."""
    found = rows(session, job, now=now)
    if status_of(found) == IN_PROGRESS:
        raise Invalid(f"sync job {job.id} is still in progress")
    for resource in session.scalars(select(SyncResource).where(SyncResource.scope == f"copy:{job.id}")):
        session.delete(resource)
    session.delete(job)

