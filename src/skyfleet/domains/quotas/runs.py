"""Submit quota operations whose tasks each carry their own site's payload, and read them back.

Why it exists: ``operations.submit`` gives every task the same payload, but a quota task lists its
site's projects with the ids and limits of that site. Same rows, same states, same engine; only the
payload differs per task. Results are read back into ``quota_site_states`` by ``ingest``, which
also marks the projects whose rebalance must be planned again (usage or limits that changed, a
write that failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from skyfleet.db.base import new_id
from skyfleet.domains.operations.models import OPEN_STATES, PENDING, RUNNING, SUCCEEDED, Operation, Task
from skyfleet.domains.operations.service import SiteRef
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaRun


def chunked(site: SiteRef, projects: list[dict[str, Any]], size: int) -> list[tuple[SiteRef, dict[str, Any]]]:
    """One task payload per ``size`` projects of a site (several tasks of a site may run at once)."""
    return [(site, {"projects": projects[i:i + size]}) for i in range(0, len(projects), max(size, 1))]


def submit(session: Session, *, kind: str, payloads: Sequence[tuple[SiteRef, dict[str, Any]]],
           summary: dict[str, Any], user_id: str | None, project_id: str | None, now: datetime) -> Operation:
    """An operation with pending tasks, each with its own site and payload (flushed, not committed)."""
    operation = Operation(kind=kind, state=RUNNING if payloads else SUCCEEDED, user_id=user_id,
                          project_id=project_id, payload=summary, total=len(payloads), created_at=now,
                          updated_at=now, finished_at=None if payloads else now)
    session.add(operation)
    session.flush()
    if payloads:
        session.execute(insert(Task), [
            {"id": new_id(), "operation_id": operation.id, "site_id": site.id, "site_name": site.name,
             "kind": kind, "payload": payload, "state": PENDING, "attempts": 0, "next_attempt_at": now,
             "created_at": now, "updated_at": now} for site, payload in payloads])
        session.add(QuotaRun(operation_id=operation.id, kind=kind, created_at=now))
    return operation


def ingest(session: Session, *, now: datetime) -> int:
    """Read finished quota tasks into the site states; a run is done once its operation is. Returns tasks read."""
    # Runs locked in creation order: a second round waits for the first and then finds them read.
    runs = list(session.scalars(select(QuotaRun).where(QuotaRun.ingested_at.is_(None))
                                .order_by(QuotaRun.created_at).with_for_update()))
    read = 0
    replan: set[str] = set()
    for run in runs:
        tasks = session.execute(select(Task.site_id, Task.state, Task.result, Task.finished_at, Task.last_error,
                                       Task.payload).where(Task.operation_id == run.operation_id)).all()
        done = [t for t in tasks if t[1] not in OPEN_STATES]
        named = sorted({p for t in done for p in ((t[2] or {}).get("projects") or {}) if not p.startswith("_")})
        cache = quotas.load_states(session, site_ids=sorted({t[0] for t in done}),
                                   project_ids=named) if run.kind == "quota.collect" else {}
        for site_id, state, result, finished_at, error, payload in done:
            read += 1
            at = finished_at or now
            applied: dict[str, dict[str, int]] = {}
            for project_id, observed in ((result or {}).get("projects") or {}).items():
                if project_id.startswith("_"):
                    continue
                if run.kind == "quota.collect":
                    if quotas.record_observation(session, project_id=project_id, site_id=site_id,
                                                 observed=observed, at=at, cache=cache):
                        replan.add(project_id)
                elif "applied" in observed:
                    applied[project_id] = observed["applied"]
                else:  # the write failed: plan it again next round
                    replan.add(project_id)
            quotas.record_applied(session, site_id=site_id, applied=applied, at=at)
            if run.kind == "quota.apply" and state != SUCCEEDED:
                replan.update(p["project_id"] for p in (payload or {}).get("projects", []))
            if run.kind == "quota.collect" and state == SUCCEEDED and (result or {}).get("cursors"):
                quotas.set_cursors(session, site_id=site_id, values=result["cursors"], at=at)
            if state != SUCCEEDED and error:
                quotas.record_site_error(session, site_id=site_id, error=error, payload_projects=[
                    p["project_id"] for p in (payload or {}).get("projects", [])])
        if all(state not in OPEN_STATES for _, state, *_ in tasks):
            run.ingested_at = now
    quotas.mark_for_plan(session, project_ids=sorted(replan))
    session.flush()
    return read


def open_sites(session: Session, *, kind: str) -> set[str]:
    """The sites with a task of ``kind`` still pending or running (a slow site keeps only itself waiting)."""
    return set(session.scalars(
        select(Task.site_id).join(QuotaRun, QuotaRun.operation_id == Task.operation_id)
        .where(QuotaRun.kind == kind, QuotaRun.ingested_at.is_(None), Task.state.in_(OPEN_STATES)).distinct()))
