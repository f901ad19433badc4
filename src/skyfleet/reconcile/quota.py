"""Global quota rounds: collect usage from every site, then write per-site limits so the global
limit holds. Both go through the engine as operations with per-site tasks (bounded, isolated).

Why it exists: it joins the store (limits, last observations, mappings) with the rebalance math and
turns the result into ``quota.collect`` and ``quota.apply`` tasks. A round is: read back finished
tasks (``ingest``), write limits that changed (``rebalance``), start a new collection (``collect``).
Offline sites get no task: their last known usage and limit are held in the math, and their next
collection happens on the first round after they come back (or join).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.events import service as events
from skyfleet.domains.operations.models import Operation
from skyfleet.domains.operations.service import SiteRef
from skyfleet.domains.projects import service as projects
from skyfleet.domains.quotas import rebalance, runs
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.quotas.schemas import BUILTIN_DEFAULTS, SERVICE_OF
from skyfleet.domains.sites import service as sites_service
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError
from skyfleet.reconcile import indicators as sampling
from skyfleet.reconcile.scheduler import PeriodicJob
from skyfleet.secrets import SecretBox

OFFLINE = "offline"
QUOTA_ROUND = "quota-round"
CHUNK = 1000  # projects per apply task (its writes go out concurrently); more projects: more tasks
FULL_READ_INTERVAL = 3600.0
FLEET_MARK = "fleet"  # seconds: the longest a change the hints miss stays unseen


def _sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).where(Site.managed.is_(True)).order_by(Site.name)))


def _ref(project: QuotaProject, site: Site, home: str, explicit: dict[tuple[str, str], str],
         state: ReadMarks | None) -> dict[str, Any]:
    remote = projects.rule(project_id=project.project_id, site=site, home_auth_url=home,
                           explicit=explicit.get((project.project_id, site.id))).remote_project_id
    if remote is None and state is not None:
        remote = state.remote_project_id  # found by name before
    return {"project_id": project.project_id, "remote_project_id": remote,
            "project_name": project.project_name, "domain_name": project.domain_name}


class ReadMarks(Protocol):
    """What a collection needs of a pair's last observation (a state row, or just these columns)."""

    project_id: str
    site_id: str
    remote_project_id: str | None
    observed_at: datetime | None
    full_read_at: datetime | None
    last_error: str | None
    network_digest: str | None


def full_read_due(state: ReadMarks | None, *, now: datetime, interval: float) -> bool:
    """Whether a project must be read in full on a site whatever the change hints say: never read in
    full, an error last time, or its periodic full read is due. The period is spread over
    [interval/2, interval] by a hash of the pair, so the full reads of a fleet do not all fall in
    one round."""
    if state is None or state.observed_at is None or state.full_read_at is None or state.last_error:
        return True
    spread = zlib.crc32(f"{state.project_id}/{state.site_id}".encode()) / 0xFFFFFFFF
    return (now - state.full_read_at).total_seconds() >= interval * (0.5 + 0.5 * spread)


def _collect_ref(project: QuotaProject, site: Site, home: str, explicit: dict[tuple[str, str], str],
                 state: ReadMarks | None, *, hinted: bool, now: datetime, interval: float) -> dict[str, Any]:
    ref = _ref(project, site, home, explicit, state)
    if not hinted:
        return ref
    moved = state is not None and ref["remote_project_id"] not in (None, state.remote_project_id)
    full = moved or full_read_due(state, now=now, interval=interval)
    return {**ref, "full": full, "network_digest": state.network_digest if state is not None else None}


def collect(session: Session, *, home_auth_url: str, now: datetime, project_ids: Sequence[str] | None = None,
            user_id: str | None = None, requester: str | None = None,
            full_read_interval: float = FULL_READ_INTERVAL, skip_sites: Collection[str] = ()) -> Operation | None:
    """Start a ``quota.collect`` operation over the online sites, one task per site (None: nothing to
    collect). A collection of every project uses the change hints; one of chosen projects reads them
    in full."""
    chosen = quotas.managed_projects(session, project_ids)
    if not chosen:
        return None
    ids = [p.project_id for p in chosen]
    hinted = project_ids is None
    explicit = projects.explicit_mappings(session, project_ids=ids)
    states = quotas.read_marks(session, project_ids=ids)
    marks = quotas.cursors(session) if hinted else {}
    known_defaults = set(quotas.site_defaults(session))
    payloads: list[tuple[SiteRef, dict[str, Any]]] = []
    for site in _sites(session):
        if site.availability == OFFLINE or site.id in skip_sites:
            continue
        refs = [_collect_ref(p, site, home_auth_url, explicit, states.get((p.project_id, site.id)), hinted=hinted,
                             now=now, interval=full_read_interval) for p in chosen]
        payload: dict[str, Any] = {"projects": refs}
        if hinted:
            payload["cursors"] = marks.get(site.id, {})
        if site.id not in known_defaults:  # what it enforces for a project it was never told about
            payload["defaults"] = True
        payloads.append((SiteRef(site.id, site.name), payload))
    if not payloads:
        return None
    return runs.submit(session, kind="quota.collect", payloads=payloads, user_id=user_id, project_id=requester,
                       summary={"projects": ids[:50], "project_count": len(ids), "hinted": hinted}, now=now)


@dataclass
class Planned:
    writes: dict[str, dict[str, dict[str, int]]]  # site id -> project id -> limits to write
    breaches: dict[str, dict[str, Any]]  # project id -> resource -> {limit, usage}
    projects: dict[str, QuotaProject]
    states: dict[tuple[str, str], QuotaSiteState]  # (project id, site id) -> state
    sites: dict[str, Site]
    unfinished: set[str] = field(default_factory=set)  # projects to plan again next round (a raise deferred)


def _current(state: QuotaSiteState) -> dict[str, int]:
    """The limits the site is known to enforce: the last acknowledged write, unless read since."""
    if state.applied_at is not None and (state.observed_at is None or state.applied_at >= state.observed_at):
        return {**state.limits, **state.applied}
    return dict(state.limits)


def _assumed_defaults(known: dict[str, dict[str, int]]) -> dict[str, int]:
    """What a site whose defaults were never read is assumed to enforce: the stock OpenStack
    defaults, or the largest any other site reported (unlimited, -1, above all)."""
    out = dict(BUILTIN_DEFAULTS)
    for limits in known.values():
        for key, value in limits.items():
            if key in out and out[key] != rebalance.UNLIMITED:
                out[key] = rebalance.UNLIMITED if int(value) == rebalance.UNLIMITED else max(out[key], int(value))
    return out


def _bounded(project: QuotaProject, limits: dict[str, int], rows: list[QuotaSiteState], sites: dict[str, Site],
             busy: Collection[str], defaults: dict[str, dict[str, int]]) -> tuple[dict[str, dict[str, int]], bool]:
    """Hard mode: every managed site counts, at what it may enforce (see ``rebalance.two_phase``);
    ``defaults``: per site, the limits it enforces for a project it was never told about."""
    by_site = {s.site_id: s for s in rows if s.site_id in sites}
    confirmed: dict[str, dict[str, int] | None] = {}
    usage: dict[str, dict[str, int]] = {}
    pending: dict[str, dict[str, int]] = {}
    writable: set[str] = set()
    for site_id, site in sites.items():
        state = by_site.get(site_id)
        if state is not None and state.absent:
            continue  # the site's Keystone knows neither the id nor the name: the project cannot use it
        if state is None or state.observed_at is None:
            confirmed[site_id] = None  # never observed: it enforces its defaults
        else:
            confirmed[site_id] = _current(state)
            usage[site_id] = {k: int(v) for k, v in state.usage.items()}
            if site.availability != OFFLINE and site_id not in busy and state.remote_project_id:
                writable.add(site_id)
        if state is not None and state.pending:
            pending[site_id] = {k: int(v) for k, v in state.pending.items()}
    site_defaults = {site_id: defaults[site_id] for site_id in confirmed}
    weights = {site_id: float(project.weights.get(sites[site_id].name, 1.0)) for site_id in confirmed}
    return rebalance.plan_hard_project(project.policy, limits, usage=usage, confirmed=confirmed, pending=pending,
                                       writable=writable, defaults=site_defaults, weights=weights)


def plan(session: Session, *, project_ids: Sequence[str] | None = None, only_marked: bool = False,
         busy: Collection[str] = ()) -> Planned:
    """The limits to write (only those that differ from what the site has) and the global breaches, of
    ``project_ids`` (None: every project; with ``only_marked``, those whose inputs changed). Sites in
    ``busy`` have a write still in flight: they are held, not written."""
    chosen = quotas.managed_projects(session, project_ids, only_marked=only_marked)
    if not chosen:  # nothing to plan: no need to load the fleet (10,000 sites in a periodic round)
        return Planned(writes={}, breaches={}, projects={}, sites={}, states={})
    sites = {s.id: s for s in _sites(session)}
    states = quotas.site_states(session, project_ids=[p.project_id for p in chosen])
    out = Planned(writes={}, breaches={}, projects={p.project_id: p for p in chosen}, sites=sites,
                  states={(s.project_id, s.site_id): s for rows in states.values() for s in rows})
    classes = quotas.class_limits(session)
    reported = quotas.site_defaults(session) if any(p.mode == rebalance.HARD for p in chosen) else {}
    assumed = _assumed_defaults(reported)
    defaults = {site_id: {**assumed, **reported.get(site_id, {})} for site_id in sites}
    for project in chosen:
        limits = {k: v for k, v in quotas.stacked_limits(classes, project).items() if k in SERVICE_OF}
        observed = [s for s in states[project.project_id] if s.observed_at is not None and s.site_id in sites]
        usage = {s.site_id: {k: int(v) for k, v in s.usage.items()} for s in observed}
        if project.mode == rebalance.HARD:
            writes, deferred = _bounded(project, limits, states[project.project_id], sites, busy, defaults)
            if deferred or any(s.pending or s.site_id in busy for s in states[project.project_id]):
                out.unfinished.add(project.project_id)
            for site_id, values in writes.items():
                out.writes.setdefault(site_id, {})[project.project_id] = values
        else:  # soft and Kingbird modes overshoot by design: no phases
            if any(s.site_id in busy for s in states[project.project_id]):
                out.unfinished.add(project.project_id)
            held = {s.site_id: {**_current(s), **{k: max(int(v), int(_current(s).get(k, v)))
                                                  for k, v in (s.pending or {}).items()}}
                    for s in observed if sites[s.site_id].availability == OFFLINE or s.site_id in busy}
            weights = {s.site_id: float(project.weights.get(sites[s.site_id].name, 1.0)) for s in observed}
            target = rebalance.plan_project(project.mode, project.policy, limits, usage, held, weights)
            by_site = {s.site_id: s for s in observed}
            for site_id, wanted in target.items():
                if not by_site[site_id].remote_project_id:
                    continue
                current = _current(by_site[site_id])
                pending = by_site[site_id].pending or {}
                changed = {k: v for k, v in wanted.items() if current.get(k) != v or k in pending}
                if changed:
                    out.writes.setdefault(site_id, {})[project.project_id] = changed
        totals = {k: sum(u.get(k, 0) for u in usage.values()) for k in limits}
        over = {k: {"limit": v, "usage": totals[k]} for k, v in limits.items() if 0 <= v < totals[k]}
        out.breaches[project.project_id] = over
    return out


def _record_breaches(session: Session, breaches: dict[str, dict[str, Any]], now: datetime) -> None:
    if not breaches:
        return
    for project in quotas.managed_projects(session, list(breaches)):
        over = breaches[project.project_id]
        new = sorted(set(over) - set(project.breached))
        if new:
            events.record(session, kind="quota.breached", severity="warning", project_id=project.project_id,
                          at=now, details={"over": {k: over[k] for k in new}, "mode": project.mode},
                          message=f"project {project.project_id} uses more than its global limit of "
                          + ", ".join(f"{k} ({over[k]['usage']} > {over[k]['limit']})" for k in new))
        if set(over) != set(project.breached):
            project.breached = over


def rebalance_now(session: Session, *, home_auth_url: str, now: datetime, project_ids: Sequence[str] | None = None,
                  chunk: int = CHUNK, only_marked: bool = False) -> Operation | None:
    """Start a ``quota.apply`` operation for every site whose limits must change (None: none must)."""
    busy = runs.open_sites(session, kind="quota.apply")  # one write in flight per site at a time
    planned = plan(session, project_ids=project_ids, only_marked=only_marked, busy=busy)
    for project in planned.projects.values():
        project.needs_plan = project.project_id in planned.unfinished
    _record_breaches(session, planned.breaches, now)
    if not planned.writes:
        return None
    chosen, states, sites = planned.projects, planned.states, planned.sites
    explicit = projects.explicit_mappings(session, project_ids=list(chosen))
    payloads = []
    for site_id, by_project in planned.writes.items():
        site = sites[site_id]
        payloads += runs.chunked(SiteRef(site.id, site.name), [
            {**_ref(chosen[pid], site, home_auth_url, explicit, states.get((pid, site_id))), "limits": limits}
            for pid, limits in sorted(by_project.items())], chunk)
    for site_id, by_project in planned.writes.items():  # unconfirmed until the site acknowledges them
        quotas.record_pending(session, site_id=site_id, writes=by_project)
    return runs.submit(session, kind="quota.apply", payloads=payloads, user_id=None, project_id=None, now=now,
                       summary={"sites": len(planned.writes), "writes": sum(len(v) for v in planned.writes.values())})


def sync_project(session: Session, *, project_id: str, home_auth_url: str, user_id: str | None,
                 now: datetime) -> dict[str, str | None]:
    """Rebalance one project now: write the limits its last observations call for, and collect again.
    Returns the ids of the two operations (None where nothing was needed)."""
    quotas.get_managed(session, project_id=project_id)
    runs.ingest(session, now=now)
    applied = rebalance_now(session, home_auth_url=home_auth_url, now=now, project_ids=[project_id])
    collected = collect(session, home_auth_url=home_auth_url, now=now, project_ids=[project_id],
                        user_id=user_id, requester=project_id)
    return {"apply_operation": applied.id if applied else None,
            "collect_operation": collected.id if collected else None}


def _plan_everything(session: Session, *, now: datetime, interval: float) -> bool:
    """Whether this round plans every project, not only those whose usage, limits or writes changed:
    when a site joined, left, went offline or came back (held limits move the others' shares), and
    once per ``interval`` anyway."""
    fleet = "|".join(f"{site_id}:{availability == OFFLINE}" for site_id, availability in session.execute(
        select(Site.id, Site.availability).where(Site.managed.is_(True)).order_by(Site.name)))
    digest = hashlib.sha256(fleet.encode()).hexdigest()
    last = quotas.get_mark(session, FLEET_MARK)
    planned_all = datetime.fromisoformat(last["planned_all_at"]) if last.get("planned_all_at") else None
    everything = last.get("sites") != digest or planned_all is None or (now - planned_all).total_seconds() >= interval
    if everything:
        quotas.set_mark(session, FLEET_MARK, {"sites": digest, "planned_all_at": now.isoformat()}, now)
    return everything


def round_(session: Session, *, home_auth_url: str, now: datetime, chunk: int = CHUNK,
           full_read_interval: float = FULL_READ_INTERVAL, indicator_interval: float = 300.0) -> dict[str, Any]:
    """One periodic round: read back, sample each project's usage as indicator series (at most once per
    ``indicator_interval``), rebalance, collect again on every online site whose previous collection has
    finished (a slow or hanging site delays only its own)."""
    read = runs.ingest(session, now=now)
    sampled = sampling.record_quota(session, now=now, interval=indicator_interval)
    everything = _plan_everything(session, now=now, interval=full_read_interval)
    applied = rebalance_now(session, home_auth_url=home_auth_url, now=now, chunk=chunk, only_marked=not everything)
    busy = runs.open_sites(session, kind="quota.collect")
    collected = collect(session, home_auth_url=home_auth_url, now=now, full_read_interval=full_read_interval,
                        skip_sites=busy)
    return {"tasks_read": read, "samples": sampled, "apply": applied.id if applied else None,
            "collect": collected.id if collected else None}


def quota_jobs(settings: Settings, factory: sessionmaker[Session], wake: Callable[[], None]) -> list[PeriodicJob]:
    """The periodic quota round (every ``quota_interval`` seconds), claimed by one process at a time."""

    def run() -> dict[str, Any]:
        with transaction(factory) as session:
            out = round_(session, home_auth_url=settings.home_auth_url, now=utcnow(),
                         full_read_interval=settings.quota_full_read_interval,
                         indicator_interval=settings.indicator_interval)
        if out["apply"] or out["collect"]:
            wake()
        return out

    return [PeriodicJob(QUOTA_ROUND, settings.quota_interval, run)]


@dataclass
class LiveUsage:
    """A live read of one project: the usage summed over the sites read now, plus the last stored
    observation of the sites that failed (named in ``failed`` with why)."""

    usage: dict[str, int]
    failed: dict[str, str]


def live_usage(factory: sessionmaker[Session], box: SecretBox, *, project_id: str, home_auth_url: str,
               timeout: float, home_domain: str = "Default", pool: SitePool | None = None) -> LiveUsage:
    """Read one project's usage and limits on every online site now (Kingbird's live ``detail``): the
    same reads as a ``quota.collect`` task, run in parallel straight from the caller. For a managed
    project they are stored as the pairs' observations (and its rebalance is planned again)."""
    from skyfleet.reconcile.kinds import SiteContext
    from skyfleet.reconcile.kinds.quota import ProjectRef, QuotaPayload, observe_usage

    with transaction(factory) as session:
        managed = session.get(QuotaProject, project_id)
        project = managed or QuotaProject(project_id=project_id, domain_name=home_domain)
        explicit = projects.explicit_mappings(session, project_ids=[project_id])
        marks = quotas.read_marks(session, project_ids=[project_id])
        targets = [(s.id, s.name, sites_service.decrypt_auth(box, s),
                    _ref(project, s, home_auth_url, explicit, marks.get((project_id, s.id))))
                   for s in _sites(session) if s.availability != OFFLINE]
        stored = {s.site_id: dict(s.usage or {}) for s in
                  session.scalars(select(QuotaSiteState).where(QuotaSiteState.project_id == project_id))}
    site_pool = pool or SitePool()

    def read(target: tuple[str, str, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        site_id, site_name, auth, ref = target
        ctx = SiteContext(site_id=site_id, site_name=site_name, auth=auth, timeout=timeout, pool=site_pool)
        try:
            found: dict[str, Any] = observe_usage(ctx, QuotaPayload(projects=[ProjectRef(**ref)]))
            return dict(found["projects"].get(project_id) or {"error": "not read"})
        except SiteError as exc:
            return {"error": exc.message}

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as workers:
        results = list(workers.map(read, targets))
    now, out = utcnow(), LiveUsage(usage={}, failed={})
    for (site_id, site_name, _, _), observed in zip(targets, results, strict=True):
        if observed.get("error") or observed.get("errors"):
            out.failed[site_name] = str(observed.get("error") or observed.get("errors"))[:300]
        usage = stored.get(site_id, {}) if observed.get("error") else \
            {**stored.get(site_id, {}), **observed.get("usage", {})}
        for key, value in usage.items():
            out.usage[key] = out.usage.get(key, 0) + int(value)
    if managed is not None:
        with transaction(factory) as session:
            for (site_id, _, _, _), observed in zip(targets, results, strict=True):
                quotas.record_observation(session, project_id=project_id, site_id=site_id,
                                          observed={**observed, "full": True}, at=now)
            quotas.mark_for_plan(session, project_ids=[project_id])
    return out
