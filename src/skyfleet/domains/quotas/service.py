"""Global limits, defaults and classes; per-site observations and the rebalance plan.

Keyword-only functions over an explicit session; the caller commits. Effective limits of a project
are the defaults (class ``default``, else the built-in OpenStack defaults), then its class, then its
own overrides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.quotas.models import (
    QuotaClass,
    QuotaMark,
    QuotaProject,
    QuotaSiteCursor,
    QuotaSiteDefaults,
    QuotaSiteState,
)
from skyfleet.domains.quotas.rebalance import UNLIMITED
from skyfleet.domains.quotas.schemas import BUILTIN_DEFAULTS, ClassOut, Limits, QuotaOut, QuotaUpdate
from skyfleet.errors import Invalid, NotFound

DEFAULT_CLASS = "default"


def defaults(session: Session) -> Limits:
    row = session.get(QuotaClass, DEFAULT_CLASS)
    return {**BUILTIN_DEFAULTS, **(row.limits if row else {})}


def get_class(session: Session, name: str) -> ClassOut:
    if name == DEFAULT_CLASS:
        return ClassOut(name=name, limits=defaults(session))
    row = session.get(QuotaClass, name)
    if row is None:
        raise NotFound(f"no quota class {name!r}")
    return ClassOut(name=name, limits={**defaults(session), **row.limits})


def list_classes(session: Session) -> list[ClassOut]:
    names = set(session.scalars(select(QuotaClass.name))) | {DEFAULT_CLASS}
    return [get_class(session, n) for n in sorted(names)]


def set_class(session: Session, *, name: str, limits: Limits, now: datetime | None = None) -> ClassOut:
    """Create a class or merge ``limits`` into it."""
    now = now or utcnow()
    row = session.get(QuotaClass, name)
    if row is None:
        row = QuotaClass(name=name, limits={}, created_at=now, updated_at=now)
        session.add(row)
    row.limits, row.updated_at = {**row.limits, **limits}, now
    mark_for_plan(session, project_ids=None)
    session.flush()
    return get_class(session, name)


def delete_class(session: Session, *, name: str) -> None:
    if session.get(QuotaClass, name) is None:
        raise NotFound(f"no quota class {name!r}")
    session.execute(delete(QuotaClass).where(QuotaClass.name == name))
    mark_for_plan(session, project_ids=None)


def effective_limits(session: Session, row: QuotaProject | None) -> Limits:
    limits = defaults(session)
    if row is None:
        return limits
    if row.quota_class and row.quota_class != DEFAULT_CLASS:
        cls = session.get(QuotaClass, row.quota_class)
        limits.update(cls.limits if cls else {})
    limits.update(row.overrides)
    return limits


def class_limits(session: Session) -> dict[str, Limits]:
    """Every class's own limits, with ``default`` already stacked on the built-in defaults (one query)."""
    rows = {row.name: dict(row.limits) for row in session.scalars(select(QuotaClass))}
    rows[DEFAULT_CLASS] = {**BUILTIN_DEFAULTS, **rows.get(DEFAULT_CLASS, {})}
    return rows


def stacked_limits(classes: dict[str, Limits], row: QuotaProject) -> Limits:
    """``effective_limits`` from preloaded ``class_limits`` (no query per project)."""
    limits = dict(classes[DEFAULT_CLASS])
    if row.quota_class and row.quota_class != DEFAULT_CLASS:
        limits.update(classes.get(row.quota_class, {}))
    limits.update(row.overrides)
    return limits


def to_out(session: Session, project_id: str, row: QuotaProject | None) -> QuotaOut:
    return QuotaOut(
        project_id=project_id, project_name=row.project_name if row else None,
        domain_name=row.domain_name if row else "Default", quota_class=row.quota_class if row else None,
        mode=row.mode if row else "hard", policy=row.policy if row else "proportional",
        weights=dict(row.weights) if row else {}, overrides=dict(row.overrides) if row else {},
        limits=effective_limits(session, row))


def get_quota(session: Session, *, project_id: str) -> QuotaOut:
    return to_out(session, project_id, session.get(QuotaProject, project_id))


def set_quota(session: Session, *, project_id: str, data: QuotaUpdate, now: datetime | None = None,
              home_domain: str = "Default") -> QuotaOut:
    """Create or change the project's global quota (overrides are merged); a new project's domain is
    ``home_domain`` unless ``data`` names one."""
    now = now or utcnow()
    if data.quota_class and data.quota_class != DEFAULT_CLASS and session.get(QuotaClass, data.quota_class) is None:
        raise Invalid(f"no quota class {data.quota_class!r}")
    row = session.get(QuotaProject, project_id)
    if row is None:
        row = QuotaProject(project_id=project_id, domain_name=home_domain, mode="hard", policy="proportional",
                           weights={}, overrides={}, breached={}, created_at=now, updated_at=now)
        session.add(row)
    row.overrides = {**row.overrides, **data.limits}
    row.needs_plan = True
    for attr in ("quota_class", "mode", "policy", "weights", "project_name", "domain_name"):
        value = getattr(data, attr)
        if value is not None:
            setattr(row, attr, value)
    row.updated_at = now
    session.flush()
    return to_out(session, project_id, row)


def delete_quota(session: Session, *, project_id: str) -> None:
    """Forget the project's overrides: its limits return to the defaults. Site limits stay as written."""
    row = session.get(QuotaProject, project_id)
    if row is None:
        raise NotFound(f"project {project_id!r} has no global quota")
    session.delete(row)


def managed_projects(session: Session, project_ids: Sequence[str] | None = None, *,
                     only_marked: bool = False) -> list[QuotaProject]:
    query = select(QuotaProject).order_by(QuotaProject.project_id)
    if only_marked:
        query = query.where(QuotaProject.needs_plan.is_(True))
    if project_ids is not None:
        query = query.where(QuotaProject.project_id.in_(project_ids))
    return list(session.scalars(query))


def site_states(session: Session, *, project_ids: Sequence[str]) -> dict[str, list[QuotaSiteState]]:
    out: dict[str, list[QuotaSiteState]] = {p: [] for p in project_ids}
    if project_ids:
        for row in session.scalars(select(QuotaSiteState).where(QuotaSiteState.project_id.in_(project_ids))):
            out[row.project_id].append(row)
    return out


StateCache = dict[tuple[str, str], QuotaSiteState]


def _state(session: Session, cache: StateCache | None, project_id: str, site_id: str) -> QuotaSiteState:
    key = (project_id, site_id)
    row = cache.get(key) if cache is not None else session.get(QuotaSiteState, key)
    if row is None:
        row = QuotaSiteState(project_id=project_id, site_id=site_id, usage={}, limits={}, applied={})
        session.add(row)
        if cache is not None:
            cache[key] = row
    return row


def load_states(session: Session, *, site_ids: Sequence[str], project_ids: Sequence[str] | None = None) -> StateCache:
    """The state rows of ``site_ids`` (only ``project_ids`` if given) in one query (what ``ingest`` updates)."""
    query = select(QuotaSiteState).where(QuotaSiteState.site_id.in_(list(site_ids)))
    if project_ids is not None:
        query = query.where(QuotaSiteState.project_id.in_(list(project_ids)))
    return {(r.project_id, r.site_id): r for r in session.scalars(query)}


def record_observation(session: Session, *, project_id: str, site_id: str, observed: dict[str, Any],
                       at: datetime, cache: StateCache | None = None) -> bool:
    """Store what a site said (usage, limits, remote id) unless a newer observation is already stored.

    The services read are merged into what was known (a round reads only what may have changed); a
    service that failed leaves ``last_error`` set, so the next round reads the project in full.
    Returns whether the usage or the limits changed (the project's rebalance must be planned again)."""
    row = _state(session, cache, project_id, site_id)
    if row.observed_at is not None and row.observed_at > at:
        return False
    if observed.get("error"):
        row.last_error = str(observed["error"])[:2000]
        absent = bool(observed.get("absent"))
        if absent != bool(row.absent):
            row.absent = absent
            return True
        return False
    if row.absent:
        row.absent = False
    errors = observed.get("errors") or {}
    row.remote_project_id = observed.get("remote_project_id") or row.remote_project_id
    usage = {**(row.usage or {}), **observed.get("usage", {})}
    limits = {**(row.limits or {}), **observed.get("limits", {})}
    changed = row.observed_at is None or usage != row.usage or limits != row.limits
    if changed:
        row.usage, row.limits = usage, limits
    if observed.get("network_digest") is not None:
        row.network_digest = str(observed["network_digest"])
    if observed.get("full") and not errors:
        row.full_read_at = at
    row.observed_at = at
    row.last_error = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))[:2000] if errors else None
    return changed


def learn_name(session: Session, *, project_id: str, name: str | None, domain_name: str | None) -> bool:
    """A site's Keystone knew the project's id: remember its name and domain, so sites that share
    nothing with it find the project by name. Never overrides a name an admin gave."""
    row = session.get(QuotaProject, project_id)
    if row is None or row.project_name or not name:
        return False
    row.project_name, row.domain_name, row.needs_plan = name, domain_name or "Default", True
    return True


def mark_for_plan(session: Session, *, project_ids: Sequence[str] | None) -> None:
    """The rebalance of these projects (None: every project) must be planned again (one UPDATE)."""
    query = update(QuotaProject).values(needs_plan=True).execution_options(synchronize_session=False)
    if project_ids is not None:
        if not project_ids:
            return
        query = query.where(QuotaProject.project_id.in_(list(project_ids)))
    session.execute(query)


def read_marks(session: Session, *, project_ids: Sequence[str]) -> dict[tuple[str, str], Any]:
    """Per (project, site), what a collection needs to know of the last one, without the JSON columns."""
    columns = (QuotaSiteState.project_id, QuotaSiteState.site_id, QuotaSiteState.remote_project_id,
               QuotaSiteState.observed_at, QuotaSiteState.full_read_at, QuotaSiteState.last_error,
               QuotaSiteState.network_digest)
    rows = session.execute(select(*columns).where(QuotaSiteState.project_id.in_(list(project_ids))))
    return {(r.project_id, r.site_id): r for r in rows}


def get_mark(session: Session, name: str) -> dict[str, Any]:
    row = session.get(QuotaMark, name)
    return dict(row.value) if row else {}


def set_mark(session: Session, name: str, value: dict[str, Any], at: datetime) -> None:
    row = session.get(QuotaMark, name)
    if row is None:
        session.add(QuotaMark(name=name, value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at


def cursors(session: Session) -> dict[str, dict[str, str]]:
    """Per site, the site times from which the next round asks what changed."""
    return {row.site_id: dict(row.cursors) for row in session.scalars(select(QuotaSiteCursor))}


def set_cursors(session: Session, *, site_id: str, values: dict[str, str], at: datetime) -> None:
    """A hinted collection of the site finished at ``at``: its new cursors, and every project it did
    not read is known unchanged as of ``at`` (one row per site, not one per project)."""
    row = session.get(QuotaSiteCursor, site_id)
    if row is None:
        session.add(QuotaSiteCursor(site_id=site_id, cursors=dict(values), checked_at=at, updated_at=at))
    elif row.updated_at <= at:
        row.cursors, row.checked_at, row.updated_at = {**row.cursors, **values}, at, at


def freshness(state: QuotaSiteState, checked_at: datetime | None) -> datetime | None:
    """As of when a pair's usage is known: its last read, or the site's last check that found it unchanged."""
    if state.observed_at is None or state.last_error or checked_at is None:
        return state.observed_at
    return max(state.observed_at, checked_at)


def record_applied(session: Session, *, site_id: str, applied: dict[str, Limits], at: datetime) -> None:
    """What a ``quota.apply`` task wrote on one site, per project: merged into the state rows with
    one SELECT and one executemany UPDATE (a first rebalance writes every project of every site)."""
    if not applied:
        return
    session.flush()
    rows = session.execute(select(QuotaSiteState.project_id, QuotaSiteState.applied, QuotaSiteState.limits,
                                  QuotaSiteState.pending)
                           .where(QuotaSiteState.site_id == site_id,
                                  QuotaSiteState.project_id.in_(list(applied)))).all()
    known = {r.project_id: r for r in rows}
    # An acknowledged write is confirmed: it replaces whatever earlier write of the same limits was unconfirmed.
    updates = [{"project_id": pid, "site_id": site_id, "applied_at": at,
                "applied": {**(known[pid].applied or {}), **limits}, "limits": {**(known[pid].limits or {}), **limits},
                "pending": {k: v for k, v in (known[pid].pending or {}).items() if k not in limits}}
               for pid, limits in applied.items() if pid in known]
    if updates:
        session.execute(update(QuotaSiteState), updates)
    for pid in sorted(set(applied) - set(known)):
        session.add(QuotaSiteState(project_id=pid, site_id=site_id, usage={}, limits=dict(applied[pid]),
                                   applied=dict(applied[pid]), applied_at=at))
    session.expire_all()  # rows loaded before hold the old values


def _larger(a: int | None, b: int) -> int:
    if a is None:
        return b
    return UNLIMITED if UNLIMITED in (a, b) else max(a, b)


def record_pending(session: Session, *, site_id: str, writes: dict[str, Limits]) -> None:
    """Writes about to be sent to one site, per project: until acknowledged each counts as pending
    (the site may enforce the larger of its old and new limit). A failed write stays pending."""
    if not writes:
        return
    session.flush()
    rows = session.execute(select(QuotaSiteState.project_id, QuotaSiteState.pending)
                           .where(QuotaSiteState.site_id == site_id,
                                  QuotaSiteState.project_id.in_(list(writes)))).all()
    known = {r.project_id: dict(r.pending or {}) for r in rows}
    updates = []
    for pid, limits in writes.items():
        if pid not in known:
            continue
        merged = dict(known[pid])
        for key, value in limits.items():
            merged[key] = _larger(merged.get(key), int(value))
        updates.append({"project_id": pid, "site_id": site_id, "pending": merged})
    if updates:
        session.execute(update(QuotaSiteState), updates)
    session.expire_all()


def site_defaults(session: Session) -> dict[str, Limits]:
    """Per site, the quota defaults it reported (what it enforces for a project it was never told about)."""
    return {row.site_id: dict(row.limits) for row in session.scalars(select(QuotaSiteDefaults))}


def set_site_defaults(session: Session, *, site_id: str, limits: Limits, at: datetime) -> None:
    row = session.get(QuotaSiteDefaults, site_id)
    if row is None:
        try:  # two collections of a new site may report its defaults at once
            with session.begin_nested():
                session.add(QuotaSiteDefaults(site_id=site_id, limits=dict(limits), observed_at=at))
            return
        except IntegrityError:
            row = session.get(QuotaSiteDefaults, site_id)
            if row is None:
                raise
    row.limits, row.observed_at = dict(limits), at


def record_site_error(session: Session, *, site_id: str, payload_projects: Sequence[str] | None,
                      error: str) -> None:
    """A site's quota task failed: keep its last known usage and limits, and say why."""
    query = select(QuotaSiteState).where(QuotaSiteState.site_id == site_id)
    if payload_projects is not None:
        query = query.where(QuotaSiteState.project_id.in_(payload_projects))
    for row in session.scalars(query):
        row.last_error = error[:2000]


def get_managed(session: Session, *, project_id: str) -> QuotaProject:
    row = session.get(QuotaProject, project_id)
    if row is None:
        raise NotFound(f"project {project_id!r} has no global quota; PUT /v1/quotas/{project_id} first")
    return row
