"""Submit quota operations whose tasks each carry their own site's payload, and read them back.

Why it exists: a quota task lists its site's projects with the ids and limits of that site, so each
task gets its own payload (``operations.submit_each``), and every quota operation is a run whose
results are read back. Results are read back into ``quota_site_states`` by ``ingest``, which
also marks the projects whose rebalance must be planned again (usage or limits that changed, a
write that failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import OPEN_STATES, SUCCEEDED, Operation, Task
from skyfleet.domains.operations.service import SiteRef
from skyfleet.domains.quotas import mapping
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaProject, QuotaRun


def chunked(site: SiteRef, projects: list[dict[str, Any]], size: int) -> list[tuple[SiteRef, dict[str, Any]]]:
    """One task payload per ``size`` projects of a site (several tasks of a site may run at once)."""
    return [(site, {"projects": projects[i:i + size]}) for i in range(0, len(projects), max(size, 1))]


def submit(session: Session, *, kind: str, payloads: Sequence[tuple[SiteRef, dict[str, Any]]],
           summary: dict[str, Any], user_id: str | None, project_id: str | None, now: datetime) -> Operation:
    """An operation with pending tasks, each with its own site and payload (flushed, not committed)."""
    operation = operations.submit_each(session, kind=kind, payloads=payloads, summary=summary, user_id=user_id,
                                       project_id=project_id, now=now)
    if payloads:
        session.add(QuotaRun(operation_id=operation.id, kind=kind, created_at=now))
    return operation


def ingest(session: Session, *, now: datetime) -> int:
    """Read finished quota tasks into the site states; a run is done once its operation is. Returns tasks read."""
    # Runs locked in creation order: a second round waits for the first and then finds them read.
    runs = list(session.scalars(select(QuotaRun).where(QuotaRun.ingested_at.is_(None))
                                .order_by(QuotaRun.created_at).with_for_update()))
    read = 0
    replan: set[str] = set()
    cache: quotas.StateCache = {}
    unmapped_seen: set[str] = set()  # projects a collection did not find on some site
    mapped_seen: set[str] = set()
    for run in runs:
        tasks = session.execute(select(Task.site_id, Task.state, Task.result, Task.finished_at, Task.last_error,
                                       Task.payload).where(Task.operation_id == run.operation_id)).all()
        done = [t for t in tasks if t[1] not in OPEN_STATES]
        named = sorted({p for t in done for p in ((t[2] or {}).get("projects") or {}) if not p.startswith("_")})
        if run.kind == "quota.collect":  # one cache for every run: two runs may name the same new pair
            loaded = quotas.load_states(session, site_ids=sorted({t[0] for t in done}), project_ids=named)
            cache.update({k: v for k, v in loaded.items() if k not in cache})
        for site_id, state, result, finished_at, error, payload in done:
            read += 1
            at = finished_at or now
            # A read is known as of its collection's start: a write acknowledged after that start
            # may not be in what it read (the write, not the read, then tells the site's limit).
            seen = min(run.created_at, at)
            if run.kind == "quota.collect" and (result or {}).get("defaults"):
                quotas.set_site_defaults(session, site_id=site_id, limits=result["defaults"], at=at)
            applied: dict[str, dict[str, int]] = {}
            for project_id, observed in ((result or {}).get("projects") or {}).items():
                if project_id.startswith("_"):
                    continue
                if run.kind == "quota.collect":
                    if observed.get("error"):
                        unmapped_seen.add(project_id)
                    elif observed.get("project_name"):
                        quotas.learn_name(session, project_id=project_id, name=observed["project_name"],
                                          domain_name=observed.get("domain_name"))
                    if observed.get("remote_project_id"):
                        mapped_seen.add(project_id)
                    if quotas.record_observation(session, project_id=project_id, site_id=site_id,
                                                 observed=observed, at=seen, cache=cache):
                        replan.add(project_id)
                elif "applied" in observed:
                    applied[project_id] = observed["applied"]
                else:  # the write failed: it stays pending (it may have landed); plan it again next round
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
    if unmapped_seen or mapped_seen:
        mapping.note_unmapped(session, project_ids=sorted(unmapped_seen | _was_unmapped(session, mapped_seen)),
                              now=now)
        session.flush()
    return read


def _was_unmapped(session: Session, project_ids: set[str]) -> set[str]:
    """Of ``project_ids``, those last reported unmapped somewhere (a mapping found now may clear it)."""
    if not project_ids:
        return set()
    rows = session.execute(select(QuotaProject.project_id, QuotaProject.unmapped)
                           .where(QuotaProject.project_id.in_(sorted(project_ids)))).all()
    return {p for p, unmapped in rows if unmapped}


def open_sites(session: Session, *, kind: str) -> set[str]:
    """The sites with a task of ``kind`` still pending or running (a slow site keeps only itself waiting)."""
    return set(session.scalars(
        select(Task.site_id).join(QuotaRun, QuotaRun.operation_id == Task.operation_id)
        .where(QuotaRun.kind == kind, QuotaRun.ingested_at.is_(None), Task.state.in_(OPEN_STATES)).distinct()))
