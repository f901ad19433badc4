"""The engine core: lease due tasks, converge one site per task through its kind, record the outcome.

No threads here (see ``pool``) but the group-commit writer: every method is a plain call that returns
once its writes are committed, so tests drive the engine step by step with a fake clock. One
transaction to lease a batch; the intents and outcomes that worker threads write at the same moment
share one (``db.group_commit``). A temporary site error
goes back to pending with exponential backoff and jitter; a permanent one fails the task at once
with the site's message; a task whose outcome cannot be written (database down) is left to its
lease, which expires and lets the task run again (kinds are idempotent).

Recovery: the engine keeps a worker row alive (``heartbeat``, which also renews its leases) and
releases the tasks of workers whose row expired, so a dead process's work resumes within the worker
TTL rather than the lease; an operation's next stage is started when its tasks settle (see
``domains.operations.stages``), and ``recover_stages`` starts any that a crash left unstarted.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from skyfleet import log_context, telemetry
from skyfleet.config import RetryPolicy
from skyfleet.db.base import table_of
from skyfleet.db.engine import transaction
from skyfleet.db.group_commit import GroupCommit
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.operations import leases, stages
from skyfleet.domains.operations.leases import Leased
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import Record
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError, TemporarySiteError
from skyfleet.logs import SECRETS, redact
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, load_builtin
from skyfleet.reconcile.limits import SiteRateLimiter
from skyfleet.reconcile.policy import Clock, SystemClock, backoff, db_retrying
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
_SITES = table_of(Site)
_SITE_AUTH = select(_SITES.c.id, _SITES.c.auth_encrypted, _SITES.c.managed).where(  # built once: every lease
    _SITES.c.id.in_(bindparam("b_ids", expanding=True)))
SITE_AUTH_CACHE = 20_000  # decrypted site credentials kept (as many as the site pool keeps sessions)


@dataclass(frozen=True)
class EngineConfig:
    per_site: int = 2
    site_rate: float = 10.0
    site_burst: int = 5
    lease_seconds: float = 30.0
    site_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    heartbeat_seconds: float = 2.0  # how often a worker says it is alive (and renews its leases)
    worker_ttl: float = 6.0  # a worker silent this long is dead: its tasks are handed back


def load_stages() -> None:
    """Import the modules that register operation continuations (each registers itself)."""
    from skyfleet.domains.servers import flow  # noqa: F401
    from skyfleet.domains.sync import converge, jobs  # noqa: F401


@dataclass(frozen=True)
class Work:
    """A leased task with what is needed to run it (``auth`` None: the site is gone or unmanaged)."""

    leased: Leased
    auth: dict[str, Any] | None
    refusal: str | None = None


@dataclass(frozen=True)
class Outcome:
    state: str  # succeeded, failed, retry
    result: dict[str, Any] | None = None
    error: str | None = None
    delay: float = 0.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(self, factory: sessionmaker[Session], *, box: SecretBox, config: EngineConfig,
                 clock: Clock | None = None, rng: Callable[[], float] = random.random,
                 pool: SitePool | None = None, owner: str | None = None) -> None:
        load_builtin()
        load_stages()
        self.factory = factory
        self.box = box
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.rng = rng
        self.pool = pool or SitePool()
        self.owner = owner or worker_id()
        self.limiter = SiteRateLimiter(rate=config.site_rate, burst=config.site_burst, clock=self.clock)
        self.on_new_work: Callable[[], None] | None = None  # a continuation submitted tasks
        self._beating_since: float | None = None  # monotonic time of the first beat of an unbroken run
        self.writes = GroupCommit(factory)  # intents and outcomes: one transaction for those of the moment
        self._decrypt_site = functools.lru_cache(maxsize=SITE_AUTH_CACHE)(box.decrypt)

    # --- leasing -----------------------------------------------------------------------------------

    def lease(self, limit: int) -> list[Work]:
        """Lease up to ``limit`` due tasks (one transaction); raises SQLAlchemyError when the DB is down."""
        token = f"{self.owner}/{uuid.uuid4().hex[:8]}"
        with transaction(self.factory) as session:
            batch = leases.lease_due(session, owner=token, now=self.clock.now(), limit=limit,
                                     lease_seconds=self.config.lease_seconds, per_site=self.config.per_site)
            if not batch:
                return []
            sites = {row[0]: (row[1], row[2]) for row in session.execute(
                _SITE_AUTH, {"b_ids": list({w.site_id for w in batch})})}
        return [self._work(leased, sites.get(leased.site_id)) for leased in batch]

    def _work(self, leased: Leased, site: tuple[str, bool] | None) -> Work:
        if site is None:
            return Work(leased, None, f"site {leased.site_name} is no longer registered")
        if not site[1]:
            return Work(leased, None, f"site {leased.site_name} is unmanaged")
        return Work(leased, self._site_auth(site[0]))

    def _site_auth(self, sealed: str) -> dict[str, Any]:
        """A site's credentials from their stored ciphertext. Decrypted once per ciphertext (a changed
        credential is a new one), not once per task: a fan-out leases thousands of tasks whose sites'
        credentials were decrypted moments ago. Each caller gets its own copy of the document."""
        auth = dict(self._decrypt_site(sealed))
        for key in ("password", "application_credential_secret"):
            SECRETS.add(auth.get(key))
        return auth

    def give_back(self, work: Work, *, delay: float) -> bool:
        """Return a leased task untried, due again in ``delay`` seconds (the attempt is not counted)."""
        now = self.clock.now()
        with transaction(self.factory) as session:
            return leases.release(session, leased=work.leased, at=now + timedelta(seconds=delay), now=now)

    def renew(self, owners: list[str]) -> int:
        with transaction(self.factory) as session:
            return leases.renew(session, owners=owners, now=self.clock.now(),
                                lease_seconds=self.config.lease_seconds)

    # --- liveness and recovery ---------------------------------------------------------------------

    def heartbeat(self, owners: list[str]) -> int:
        """Say this worker is alive, renew the leases it holds, and hand back the tasks of dead workers
        (one transaction); returns how many tasks were handed back. Raises SQLAlchemyError when the
        database is down. A worker calls no one dead until it has beaten for two heartbeat periods
        without a break (at start, and after an outage): by then the other live workers, silent
        through the same outage, have beaten again."""
        now, mono = self.clock.now(), self.clock.monotonic()
        settle = 2 * self.config.heartbeat_seconds
        try:
            with transaction(self.factory) as session:
                leases.heartbeat(session, worker=self.owner, now=now, ttl=self.config.worker_ttl)
                leases.renew(session, owners=owners, now=now, lease_seconds=self.config.lease_seconds)
                if self._beating_since is None or mono - self._beating_since < settle:
                    released = 0
                else:
                    released = leases.release_dead(session, now=now, alive=self.owner)
        except SQLAlchemyError:
            self._beating_since = None
            raise
        if self._beating_since is None:
            self._beating_since = mono
        if released:
            log.warning("handed back %d task(s) of worker(s) whose heartbeat stopped", released)
        return released

    def retire(self) -> None:
        """Remove this worker's row (a clean stop)."""
        with transaction(self.factory) as session:
            leases.retire(session, worker=self.owner)

    def reclaim_all(self) -> int:
        """Hand back every leased task: only for a process that is the sole user of its database
        (the embedded server at start), whose earlier self died holding them."""
        with transaction(self.factory) as session:
            released = leases.release_all(session, now=self.clock.now())
        if released:
            log.warning("reclaimed %d task(s) leased before the last stop", released)
        return released

    def recover_stages(self) -> int:
        """Start the next stage of settled operations that a crash or an error left unstarted."""
        with transaction(self.factory) as session:
            closed = leases.close_settled(session, now=self.clock.now())
        if closed:
            log.warning("closed %d operation(s) whose last tasks settled at the same instant", closed)
        with transaction(self.factory) as session:
            started = stages.recover(session, now=self.clock.now())
        if started and self.on_new_work is not None:
            self.on_new_work()
        return started

    def _intend(self, work: Work, intent: dict[str, Any]) -> None:
        """Record on the task what the attempt is about to do; a site is never changed unrecorded."""
        now = self.clock.now()
        try:
            held = self.writes.run(lambda session: leases.record_intent(session, leased=work.leased, intent=intent,
                                                                        now=now))
        except SQLAlchemyError as exc:
            raise TemporarySiteError(f"cannot record the attempt before changing the site "
                                     f"({type(exc).__name__}); not changed") from exc
        if not held:
            raise TemporarySiteError("the task's lease was lost before changing the site; not changed")

    def _progress(self, work: Work, progress: dict[str, Any]) -> None:
        """Write how far the attempt got on the task (shown as the binding's progress)."""
        try:
            with transaction(self.factory) as session:
                leases.record_progress(session, leased=work.leased, progress=progress, now=self.clock.now())
        except SQLAlchemyError:
            log.warning("could not record the progress of task %s", work.leased.task_id)

    def _seen(self, work: Work, records: list[Record]) -> None:
        """Write what a task just read of its site into the global view (only the rows it names)."""
        site = inventory.SiteRef(work.leased.site_id, work.leased.site_name)
        by_kind: dict[str, list[Record]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        try:
            with transaction(self.factory) as session:
                for kind, found in by_kind.items():
                    inventory.apply_records(session, site=site, kind=kind, records=found, now=self.clock.now(),
                                            complete=False)
        except SQLAlchemyError:  # the next inventory refresh stores it anyway
            log.warning("could not store what task %s saw of site %s", work.leased.task_id, site.name)

    def peer_auth(self, site_id: str) -> dict[str, Any] | None:
        """The decrypted credentials of another managed site (a copy's source); None when it is gone."""
        with transaction(self.factory) as session:
            row = session.execute(select(Site.auth_encrypted, Site.managed).where(Site.id == site_id)).first()
        if row is None or not row[1]:
            return None
        return self._site_auth(row[0])

    # --- running -----------------------------------------------------------------------------------

    def execute(self, work: Work) -> Outcome:
        """Converge one site (no database access); never raises."""
        leased = work.leased
        if work.auth is None:
            return Outcome("failed", error=work.refusal)
        kind = REGISTRY.get(leased.kind)
        if kind is None:
            return Outcome("failed", error=f"unknown task kind {leased.kind!r}")
        self.limiter.acquire(leased.site_id)
        ctx = SiteContext(site_id=leased.site_id, site_name=leased.site_name, auth=work.auth,
                          timeout=self.config.site_timeout, pool=self.pool, prior_intent=leased.intent,
                          record_intent=lambda intent: self._intend(work, intent), reveal=self.box.decrypt,
                          peer=self.peer_auth, progress=lambda done: self._progress(work, done),
                          seen=lambda records: self._seen(work, records))
        try:
            return Outcome("succeeded", result=kind.run(ctx, leased.payload))
        except SiteError as exc:
            message = redact(exc.message)
            if not exc.temporary:
                return Outcome("failed", error=message)
            return self._retry(kind.persistent, leased, message)
        except Exception as exc:  # a bug in a kind fails its task, never the worker
            log.exception("task %s (%s on %s) crashed", leased.task_id, leased.kind, leased.site_name)
            return Outcome("failed", error=redact(f"internal error in {leased.kind}: {type(exc).__name__}"))

    def _retry(self, persistent: bool, leased: Leased, message: str) -> Outcome:
        """A temporary failure: back off; give up after max attempts, unless the kind never gives up."""
        policy, attempts = self.config.retry, leased.attempts
        delay = backoff(policy, attempts, self.rng)
        if not persistent:
            if attempts >= policy.max_attempts:
                return Outcome("failed", error=f"{message} (gave up after {attempts} attempts)")
            return Outcome("retry", error=message, delay=delay)
        delay = min(delay, policy.failing_every)
        if attempts >= policy.max_attempts:
            return Outcome("retry", error=f"{message} (failing after {attempts} attempts; trying again at most "
                           f"every {policy.failing_every:g} s)", delay=delay, result={"failing": True})
        return Outcome("retry", error=message, delay=delay)

    def record(self, work: Work, outcome: Outcome) -> bool:
        """Write the outcome (in one transaction, shared with the other workers' writes of the moment:
        ``writes``); False when the lease was lost or the task cancelled."""
        leased, now = work.leased, self.clock.now()

        def write(session: Session) -> tuple[bool, bool]:
            if outcome.state == "succeeded":
                recorded = leases.succeed(session, leased=leased, result=outcome.result or {}, now=now)
            elif outcome.state == "retry":
                recorded = leases.retry_later(session, leased=leased, error=outcome.error or "", now=now,
                                              at=now + timedelta(seconds=outcome.delay), result=outcome.result)
            else:
                recorded = leases.fail(session, leased=leased, error=outcome.error or "failed", now=now)
            return recorded, stages.spawned(session)

        recorded, spawned = self.writes.run(write)
        if spawned and self.on_new_work is not None:
            self.on_new_work()  # the settled task started its operation's next stage
        return recorded

    def record_until(self, work: Work, outcome: Outcome, deadline: float) -> bool:
        """``record``, retried while the database is unreachable and the lease still ours (0.5 s
        doubling to 5 s; no sleep that would end past ``deadline``)."""
        retrying = db_retrying(sleep=self.clock.sleep, first=0.5, cap=5.0,
                               stop=lambda state: self.clock.monotonic() + (state.upcoming_sleep or 0) >= deadline)
        try:
            return bool(retrying(self.record, work, outcome))
        except SQLAlchemyError as exc:
            log.warning("cannot record task %s (%s); its lease will expire and it will run again",
                        work.leased.task_id, type(exc).__name__)
            return False

    def run(self, work: Work) -> Outcome:
        """Execute and record one task; every log line it causes carries its operation, task and site."""
        leased = work.leased
        with log_context.scope(operation_id=leased.operation_id, task_id=leased.task_id, site_id=leased.site_id):
            deadline = self.clock.monotonic() + self.config.lease_seconds
            started = time.perf_counter()
            outcome = self.execute(work)
            telemetry.observe_task(leased.kind, outcome.state, time.perf_counter() - started)
            self.record_until(work, outcome, deadline)
            log.debug("task %s on %s: %s", leased.task_id, leased.site_name, outcome.state)
            return outcome

    def run_until_idle(self, *, limit: int = 64, max_rounds: int = 1000) -> int:
        """Lease and run due tasks inline until none is due; returns how many ran (tests, CLI)."""
        ran = 0
        for _ in range(max_rounds):
            batch = self.lease(limit)
            if not batch:
                break
            for work in batch:
                self.run(work)
                ran += 1
        return ran
