"""The engine core: lease due tasks, converge one site per task through its kind, record the outcome.

No threads here (see ``pool``): every method is a plain call, so tests drive the engine step by step
with a fake clock. One transaction to lease a batch, one per task outcome. A temporary site error
goes back to pending with exponential backoff and jitter; a permanent one fails the task at once
with the site's message; a task whose outcome cannot be written (database down) is left to its
lease, which expires and lets the task run again (kinds are idempotent).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import RetryPolicy
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import leases
from skyfleet.domains.operations.leases import Leased
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError
from skyfleet.logs import SECRETS, redact
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, load_builtin
from skyfleet.reconcile.limits import SiteRateLimiter
from skyfleet.reconcile.policy import Clock, SystemClock, backoff
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    per_site: int = 2
    site_rate: float = 10.0
    site_burst: int = 5
    lease_seconds: float = 30.0
    site_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


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
        self.factory = factory
        self.box = box
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.rng = rng
        self.pool = pool or SitePool()
        self.owner = owner or worker_id()
        self.limiter = SiteRateLimiter(rate=config.site_rate, burst=config.site_burst, clock=self.clock)

    # --- leasing -----------------------------------------------------------------------------------

    def lease(self, limit: int) -> list[Work]:
        """Lease up to ``limit`` due tasks (one transaction); raises SQLAlchemyError when the DB is down."""
        token = f"{self.owner}/{uuid.uuid4().hex[:8]}"
        with transaction(self.factory) as session:
            batch = leases.lease_due(session, owner=token, now=self.clock.now(), limit=limit,
                                     lease_seconds=self.config.lease_seconds, per_site=self.config.per_site)
            if not batch:
                return []
            sites = {row.id: (row.auth_encrypted, row.managed) for row in session.execute(
                select(Site.id, Site.auth_encrypted, Site.managed).where(
                    Site.id.in_({w.site_id for w in batch})))}
        return [self._work(leased, sites.get(leased.site_id)) for leased in batch]

    def _work(self, leased: Leased, site: tuple[str, bool] | None) -> Work:
        if site is None:
            return Work(leased, None, f"site {leased.site_name} is no longer registered")
        if not site[1]:
            return Work(leased, None, f"site {leased.site_name} is unmanaged")
        auth = self.box.decrypt(site[0])
        for key in ("password", "application_credential_secret"):
            SECRETS.add(auth.get(key))
        return Work(leased, auth)

    def give_back(self, work: Work, *, delay: float) -> bool:
        """Return a leased task untried, due again in ``delay`` seconds (the attempt is not counted)."""
        now = self.clock.now()
        with transaction(self.factory) as session:
            return leases.release(session, leased=work.leased, at=now + timedelta(seconds=delay), now=now)

    def renew(self, owners: list[str]) -> int:
        with transaction(self.factory) as session:
            return leases.renew(session, owners=owners, now=self.clock.now(),
                                lease_seconds=self.config.lease_seconds)

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
                          timeout=self.config.site_timeout, pool=self.pool)
        try:
            return Outcome("succeeded", result=kind.run(ctx, leased.payload))
        except SiteError as exc:
            message = redact(exc.message)
            if not exc.temporary:
                return Outcome("failed", error=message)
            if leased.attempts >= self.config.retry.max_attempts:
                return Outcome("failed", error=f"{message} (gave up after {leased.attempts} attempts)")
            return Outcome("retry", error=message, delay=backoff(self.config.retry, leased.attempts, self.rng))
        except Exception as exc:  # a bug in a kind fails its task, never the worker
            log.exception("task %s (%s on %s) crashed", leased.task_id, leased.kind, leased.site_name)
            return Outcome("failed", error=redact(f"internal error in {leased.kind}: {type(exc).__name__}"))

    def record(self, work: Work, outcome: Outcome) -> bool:
        """Write the outcome (one transaction); False when the lease was lost or the task cancelled."""
        leased, now = work.leased, self.clock.now()
        with transaction(self.factory) as session:
            if outcome.state == "succeeded":
                return leases.succeed(session, leased=leased, result=outcome.result or {}, now=now)
            if outcome.state == "retry":
                return leases.retry_later(session, leased=leased, error=outcome.error or "", now=now,
                                          at=now + timedelta(seconds=outcome.delay))
            return leases.fail(session, leased=leased, error=outcome.error or "failed", now=now)

    def record_until(self, work: Work, outcome: Outcome, deadline: float) -> bool:
        """``record``, retried while the database is unreachable and the lease still ours."""
        pause = 0.5
        while True:
            try:
                return self.record(work, outcome)
            except SQLAlchemyError as exc:
                if self.clock.monotonic() + pause >= deadline:
                    log.warning("cannot record task %s (%s); its lease will expire and it will run again",
                                work.leased.task_id, type(exc).__name__)
                    return False
                self.clock.sleep(pause)
                pause = min(pause * 2, 5.0)

    def run(self, work: Work) -> Outcome:
        """Execute and record one task."""
        deadline = self.clock.monotonic() + self.config.lease_seconds
        outcome = self.execute(work)
        self.record_until(work, outcome, deadline)
        log.debug("task %s on %s: %s", work.leased.task_id, work.leased.site_name, outcome.state)
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
