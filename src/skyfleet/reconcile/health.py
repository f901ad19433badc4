"""The health audit: check every managed site concurrently (bounded) and record what was seen.

An online site this process already probed gets one cheap call on its kept token, on the audit's event
loop; the others, every Nth cycle and any site whose cheap call fails or changes, get the full probe on
that loop too, its login included (``drivers.openstack.probe_loop``; a thread pool only for a given
``prober`` or an audit without the process's memory) (``reconcile.audit_cycle``). One slow or dead site
costs one slot for at most the site timeout (twice when a timed-out cheap call is followed by the full
probe); the others go on. Each site call takes a background slot of the process's priority lanes, so
while user-started tasks run here the audit makes only a few at once (``reconcile.lanes``).
Results are written in batches so a 10,000-site audit is not 10,000 transactions. A site that comes
back online has its tasks waiting on backoff made due at once (the caller wakes the workers).
"""

from __future__ import annotations

import functools
import logging
import queue
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from skyfleet import log_context
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import leases
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import ProbeResult
from skyfleet.drivers.openstack.audit_http import Answer
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.probe import probe_site
from skyfleet.drivers.openstack.probe_loop import login_on_loop, probe_on_loop
from skyfleet.reconcile import indicators
from skyfleet.reconcile.audit_cycle import AuditMemory, Cheap, Memo, judge
from skyfleet.reconcile.lanes import Lanes, background_slot
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
Prober = Callable[[dict[str, Any]], ProbeResult]
BATCH = 200
ONLINE = "online"


@dataclass
class AuditReport:
    sites: int = 0
    reachable: int = 0
    unreachable: int = 0
    transitions: dict[str, str] = field(default_factory=dict)
    resumed: int = 0  # tasks made due at once because their site came back online
    cheap: int = 0  # sites this cycle checked with one cheap call (no full probe)
    seconds: float = 0.0


def observation(result: ProbeResult) -> sites.HealthObservation:
    return sites.HealthObservation(
        reachable=result.reachable, failed_services=result.failed_services,
        capabilities=result.capabilities() if result.reachable and result.full else None,
        latency_ms=result.latency_ms, error=result.error,
    )


Outcome = tuple[str, ProbeResult, float]  # site id, result, seconds the probe took


def _known_services(site: Site) -> tuple[str, ...]:
    services = (site.capabilities or {}).get("services") or []
    return tuple(str(s["type"]) for s in services if isinstance(s, dict) and s.get("type"))


def _record_cheap(session: Session, cheap: list[Outcome], now: datetime) -> set[str]:
    """Record the cheap checks of a batch in one statement; returns the sites recorded. A cheap check is
    only made of an online site and means it still is: no transition, so no event and no ORM load. A row
    whose availability changed meanwhile is left alone (its next audit is a full probe)."""
    if not cheap:
        return set()
    table = cast(Table, Site.__table__)
    statement = update(table).where(table.c.id == bindparam("b_id"), table.c.availability == ONLINE).values(
        last_audit_at=now, last_seen_at=now, consecutive_failures=0, last_error=None,
        latency_ms=bindparam("b_latency"))
    session.execute(statement, [{"b_id": site_id, "b_latency": result.latency_ms} for site_id, result, _ in cheap])
    return {site_id for site_id, _, _ in cheap}


def _apply(factory: sessionmaker[Session], batch: list[Outcome], offline_after: int, report: AuditReport,
           indicator_interval: float | None) -> None:
    """Record a batch of results, and their indicator samples, in one transaction."""
    now = utcnow()
    sampled: list[indicators.Probed] = []
    full = [outcome for outcome in batch if outcome[1].full]
    cheap = [outcome for outcome in batch if not outcome[1].full]
    back: list[str] = []  # sites back online in this batch
    with transaction(factory) as session:
        for site_id, result, seconds in cheap:
            sampled.append(indicators.Probed(site_id, result, seconds * 1000, ()))
        _record_cheap(session, cheap, now)
        rows = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_([i for i, _, _ in full])))} \
            if full else {}
        for site_id, result, seconds in full:
            site = rows.get(site_id)
            if site is None:  # deleted while being probed
                continue
            sampled.append(indicators.Probed(site_id, result, seconds * 1000, _known_services(site)))
            changed = sites.record_health(session, site=site, seen=observation(result),
                                          offline_after=offline_after, now=now)
            if changed:
                report.transitions[site.name] = changed
                log.info("site %s is now %s", site.name, changed, extra={"site_id": site.id})
            if changed == ONLINE:  # back: its tasks waiting on backoff are tried at once
                back.append(site.id)
        report.resumed += leases.due_now(session, site_ids=back, now=now)
        if indicator_interval is not None:
            indicators.record_probes(session, sampled, now=now, interval=indicator_interval)


def _probe_logged(probe: Prober, auth: dict[str, Any], site_id: str,
                  lanes: Lanes | None = None) -> tuple[ProbeResult, float]:
    """``probe(auth)`` in a background slot, with the site's id on every log line it causes (drivers,
    keystoneauth), and the seconds the probe took (the wait for a slot left out)."""
    with background_slot(lanes), log_context.scope(site_id=site_id):
        started = time.monotonic()
        result = probe(auth)
        return result, time.monotonic() - started


def _probe_on_loop(memory: AuditMemory, session: Any, site_id: str, auth: dict[str, Any], timeout: float,
                   lanes: Lanes | None) -> Future[tuple[ProbeResult, float]]:
    """The full probe on the audit's event loop (``drivers.openstack.probe_loop``) in a background slot,
    and the seconds it took (the wait for a slot left out)."""
    http = memory.client()

    async def timed() -> tuple[ProbeResult, float]:
        started = time.monotonic()
        result = await probe_on_loop(http, site_id, auth, session, timeout=timeout)
        return result, time.monotonic() - started

    return http.run(timed, lanes)


def in_shard(site_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``site_id`` belongs to shard (index, count); a stable hash, the same in every process."""
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(site_id.encode()) % count == index


@dataclass(frozen=True)
class Target:
    site_id: str
    encrypted: str
    availability: str


def _load_targets(factory: sessionmaker[Session], shard: tuple[int, int] | None) -> list[Target]:
    with transaction(factory) as session:
        return [Target(s.id, s.auth_encrypted, s.availability) for s in session.execute(
            select(Site.id, Site.auth_encrypted, Site.availability).where(
                Site.managed.is_(True))) if in_shard(s.id, shard)]


def _stored_zones(factory: sessionmaker[Session], site_ids: list[str]) -> dict[str, list[str]]:
    """The zones the last full probe recorded of each site that had an answering compute service, read
    only for the sites this process has not probed (once per site and process, in chunks)."""
    found: dict[str, list[str]] = {}
    with transaction(factory) as session:
        for start in range(0, len(site_ids), 500):
            chunk = site_ids[start:start + 500]
            for site_id, capabilities in session.execute(
                    select(Site.id, Site.capabilities).where(Site.id.in_(chunk))):
                zones = (capabilities or {}).get("availability_zones")
                computes = [s for s in (capabilities or {}).get("services") or []
                            if isinstance(s, dict) and s.get("type") == "compute" and s.get("status") == "ok"]
                if computes and isinstance(zones, list) and zones and all(isinstance(z, str) for z in zones):
                    found[site_id] = zones
    return found


def _login_then_cheap(memory: AuditMemory, memo: Memo, session: Any, site_id: str, availability: str,
                      pool: SitePool, timeout: float, lanes: Lanes | None
                      ) -> Future[tuple[Cheap | None, Answer | None, str | None]]:
    """A login on the audit's loop, then the site's cheap call with the new token, in one background slot:
    (the cheap call and its answer), (None, None, the login's error), or (None, None, None) when the cheap
    call cannot be made with that token (the full probe then runs)."""
    http = memory.client()

    async def run() -> tuple[Cheap | None, Answer | None, str | None]:
        view, error = await login_on_loop(http, site_id, session, interface=memo.auth.get("interface", "public"),
                                          region=memo.auth.get("region_name") or None, timeout=timeout)
        if view is None:
            return None, None, error
        memory.after_login(memo, session, view)
        cheap = memory.cheap(site_id, memo, availability=availability, pool=pool, timeout=timeout)
        if cheap is None:
            return None, None, None
        return cheap, await http.fetch(cheap.call), None

    return http.run(run, lanes)


def _crashed(exc: BaseException) -> ProbeResult:
    return ProbeResult(reachable=False, error=f"probe crashed: {type(exc).__name__}")


def run_audit(
    factory: sessionmaker[Session], *, box: SecretBox, concurrency: int, timeout: float,
    offline_after: int, prober: Prober | None = None, shard: tuple[int, int] | None = None,
    lanes: Lanes | None = None, indicator_interval: float | None = 0.0, pool: SitePool | None = None,
    memory: AuditMemory | None = None,
) -> AuditReport:
    """One audit cycle over every managed site (or over one shard of them); with ``lanes``, each site
    call waits for a background slot (no gate without).

    ``indicator_interval``: least seconds between two indicator samples of a site (0: every audit;
    None: no samples). ``pool``: the process's sessions, given each site's fresh token for its other calls.
    ``memory`` (with ``pool`` and no ``prober``): the process's memory of the sites, so that an unchanged
    online site costs one cheap call (``reconcile.audit_cycle``); without it every site gets a full probe.
    """
    started = time.monotonic()
    targets = _load_targets(factory, shard)
    report = AuditReport(sites=len(targets))
    if memory is not None:
        memory.forget_except({t.site_id for t in targets}, lambda site_id: in_shard(site_id, shard))
    if not targets:
        return report
    cheap_ok = memory is not None and pool is not None and prober is None
    done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    memos: dict[str, Memo] = {}
    with ThreadPoolExecutor(max_workers=min(concurrency, len(targets)),
                            thread_name_prefix="audit") as probes:

        def full(site_id: str, auth: dict[str, Any], memo: Memo | None) -> None:
            future: Future[tuple[ProbeResult, float]]
            if cheap_ok and memory is not None and memo is not None and pool is not None:
                # on the audit's event loop, with the pool's session: its token is the engine's too
                future = _probe_on_loop(memory, memory.session(memo, pool, timeout), site_id, auth, timeout,
                                        lanes)
            else:
                probe = prober or functools.partial(probe_site, timeout=timeout, share=pool)
                future = probes.submit(_probe_logged, probe, auth, site_id, lanes)

            def finished(f: Future[tuple[ProbeResult, float]]) -> None:
                try:
                    result, seconds = f.result()
                except Exception as exc:  # a bug in one probe must not stop the audit
                    log.error("probe of site %s crashed", site_id, exc_info=exc)
                    result, seconds = _crashed(exc), 0.0
                done.put((site_id, result, seconds))
            future.add_done_callback(finished)

        cheaps: list[Cheap] = []

        def answered(index: int, answer: Answer) -> None:  # on the audit's event loop: must not block
            answered_one(cheaps[index], answer)

        def answered_one(cheap: Cheap, answer: Answer) -> None:
            try:
                result = judge(cheap, answer, cheap.memo.auth.get("region_name") or None)
                if result is None:  # failed, refused or changed: the full probe, now
                    full(cheap.site_id, cheap.memo.auth, cheap.memo)
                else:
                    done.put((cheap.site_id, result, answer.seconds))
            except Exception as exc:
                log.error("cheap check of site %s crashed", cheap.site_id, exc_info=exc)
                done.put((cheap.site_id, _crashed(exc), 0.0))

        def login_then_cheap(target: Target, memo: Memo) -> None:
            assert memory is not None and pool is not None
            started = time.monotonic()
            future = _login_then_cheap(memory, memo, memory.session(memo, pool, timeout), target.site_id,
                                       target.availability, pool, timeout, lanes)

            def finished(f: Future[tuple[Cheap | None, Answer | None, str | None]]) -> None:
                try:
                    cheap, answer, error = f.result()
                    if error is not None:  # what the full probe would find: its login is refused or unanswered
                        done.put((target.site_id, ProbeResult(
                            reachable=False, error=error, latency_ms=round((time.monotonic() - started) * 1000, 2)),
                            time.monotonic() - started))
                    elif cheap is None or answer is None:
                        full(target.site_id, memo.auth, memo)
                    else:
                        answered_one(cheap, answer)
                except Exception as exc:
                    log.error("login and cheap check of site %s crashed", target.site_id, exc_info=exc)
                    done.put((target.site_id, _crashed(exc), 0.0))
            future.add_done_callback(finished)

        if memory is not None and cheap_ok:  # sites probed before this process started: no full probe now
            unseen = [t.site_id for t in targets if t.availability == ONLINE and not memory.memo(
                t.site_id, t.encrypted, box).probed]
            for site_id, zones in _stored_zones(factory, unseen).items():
                memory.seed(site_id, memory.memos[site_id], zones)

        for target in targets:
            if memory is None:
                full(target.site_id, box.decrypt(target.encrypted), None)
                continue
            memo = memos[target.site_id] = memory.memo(target.site_id, target.encrypted, box)
            cheap = memory.cheap(target.site_id, memo, availability=target.availability, pool=pool,
                                 timeout=timeout) \
                if cheap_ok and pool is not None else None
            if cheap is not None:
                cheaps.append(cheap)
            elif cheap_ok and memory.login_first(memo, target.availability):
                login_then_cheap(target, memo)
            else:
                full(target.site_id, memo.auth, memo)
        if memory is not None and cheaps:  # one hand-over to the event loop for every cheap call
            memory.client().start_many([c.call for c in cheaps], answered, lanes)

        batch: list[Outcome] = []
        for _ in targets:
            site_id, result, seconds = done.get()
            if memory is not None and site_id in memos:
                if result.full:
                    memory.after_full(site_id, memos[site_id], result)
                else:
                    memos[site_id].cheap_left -= 1
                    report.cheap += 1
            if result.reachable:
                report.reachable += 1
            else:
                report.unreachable += 1
            batch.append((site_id, result, seconds))
            if len(batch) >= BATCH:
                _apply(factory, batch, offline_after, report, indicator_interval)
                batch = []
    if batch:
        _apply(factory, batch, offline_after, report, indicator_interval)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("health audit: %d sites (%d by a cheap call), %d reachable, %d unreachable, %d transitions in %.2fs",
             report.sites, report.cheap, report.reachable, report.unreachable, len(report.transitions),
             report.seconds)
    return report


def probe_and_record(
    factory: sessionmaker[Session], *, box: SecretBox, site_id: str, timeout: float, offline_after: int,
    prober: Prober | None = None,
) -> None:
    """Probe one site now (at registration) and record the result."""
    with transaction(factory) as session:
        site = session.get(Site, site_id)
        if site is None:
            return
        auth = sites.decrypt_auth(box, site)
    result = (prober or (lambda a: probe_site(a, timeout=timeout)))(auth)
    with transaction(factory) as session:
        site = session.get(Site, site_id)
        if site is None:
            return
        seen = observation(result)
        if not result.reachable:
            # A site that cannot be reached at registration stays unknown, with the reason.
            site.last_error = sites.short_reason(seen.error)
            site.last_audit_at = utcnow()
            site.latency_ms = seen.latency_ms
            return
        sites.record_health(session, site=site, seen=seen, offline_after=offline_after, now=utcnow())
