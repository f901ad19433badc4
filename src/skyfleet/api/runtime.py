"""Everything one Skyfleet process holds: settings, database, secret box, auth, periodic workers."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from skyfleet import gc_tuning
from skyfleet.api.auth import TokenValidator
from skyfleet.config import Settings
from skyfleet.db import migrate
from skyfleet.db.engine import make_engine, make_session_factory
from skyfleet.reconcile import indicators
from skyfleet.reconcile.audit_cycle import AuditMemory
from skyfleet.reconcile.drift import ScanReport, scan_fleet
from skyfleet.reconcile.health import Prober, run_audit
from skyfleet.reconcile.inventory import inventory_jobs
from skyfleet.reconcile.lanes import Lanes
from skyfleet.reconcile.quota import quota_jobs
from skyfleet.reconcile.runner import EngineRunner, SitePool
from skyfleet.reconcile.scheduler import PeriodicJob, Scheduler
from skyfleet.reconcile.sync_audit import converge_all
from skyfleet.secrets import SecretBox, load_keys

HEALTH_AUDIT = "health-audit"
SYNC_AUDIT = "sync-audit"
SYNC_CONVERGE = "sync-converge"


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    box: SecretBox
    validator: TokenValidator | None
    prober: Prober | None = None
    scheduler: Scheduler | None = field(default=None)
    runner: EngineRunner | None = field(default=None)
    # The process's priority lanes: its worker pool counts user-started tasks in them, and the periodic
    # fan-outs (health audit, inventory refresh, drift audit) drop to ``background_floor`` site calls meanwhile.
    lanes: Lanes = field(default_factory=Lanes)
    # The process's sessions and tokens per site credential: the health audit, the engine and the inventory
    # refresh call the sites through it (one login per site per token lifetime).
    site_pool: SitePool = field(default_factory=SitePool)
    # The health audit's memory of each site (its token, when its next full probe is due) and its event loop.
    audit_memory: AuditMemory = field(default_factory=AuditMemory)

    def audit_now(self, shard: tuple[int, int] | None = None) -> object:
        s = self.settings
        report = run_audit(self.factory, box=self.box, concurrency=s.audit_concurrency, timeout=s.site_timeout,
                           offline_after=s.offline_after_misses, prober=self.prober, shard=shard,
                           lanes=self.lanes, indicator_interval=s.indicator_interval, pool=self.site_pool,
                           memory=self.audit_memory)
        if report.resumed:
            self.wake()  # sites came back online: their waiting tasks are due now
        return report

    def audit_jobs(self) -> list[PeriodicJob]:
        """The health audit as one periodic job, or as ``audit_shards`` jobs claimed separately so that
        several processes share one cycle."""
        count = self.settings.audit_shards
        if count == 1:
            return [PeriodicJob(HEALTH_AUDIT, self.settings.audit_interval, self.audit_now)]
        return [PeriodicJob(f"{HEALTH_AUDIT}/{i}", self.settings.audit_interval,
                            functools.partial(self.audit_now, (i, count)), group=HEALTH_AUDIT)
                for i in range(count)]

    def drift_audit_now(self) -> ScanReport:
        """The drift audit (one listing per site per kind); wakes the workers as its repairs are submitted."""
        s = self.settings
        return scan_fleet(self.factory, box=self.box, concurrency=s.sync_audit_concurrency,
                          timeout=s.site_timeout, pool=self.site_pool, lanes=self.lanes, wake=self.wake)

    def sync_converge_now(self) -> set[str]:
        """The periodic converge pass (what the drift audit does not list); wakes the workers."""
        started = converge_all(self.factory, skip_listed=True)
        if started:
            self.wake()
        return started

    def sync_audit_now(self) -> int:
        """Both periodic sync jobs at once: the drift audit, then the converge pass; returns how many
        resources got work."""
        return len(self.drift_audit_now().repaired | self.sync_converge_now())

    def start_workers(self, *, concurrency: int | None = None) -> None:
        jobs = [*self.audit_jobs(),
                *inventory_jobs(self.settings, self.factory, self.box, self.lanes, self.site_pool),
                *quota_jobs(self.settings, self.factory, self.wake),
                PeriodicJob(SYNC_AUDIT, self.settings.sync_audit_interval, self.drift_audit_now),
                PeriodicJob(SYNC_CONVERGE, self.settings.effective_sync_converge_interval, self.sync_converge_now),
                indicators.prune_job(self.settings, self.factory)]
        if self.settings.periodic_jobs:
            self.scheduler = Scheduler(self.factory, jobs)
            self.scheduler.start()
        self.runner = EngineRunner(self.settings, self.factory, self.box, concurrency=concurrency,
                                   lanes=self.lanes, pool=self.site_pool)
        self.runner.start()

    def wake(self) -> None:
        """New tasks were committed: wake the workers (in-process pool and, via the broker, all others)."""
        if self.runner is None:  # an API-only process still tells the workers through the broker
            self.runner = EngineRunner(self.settings, self.factory, self.box, run_workers=False)
        self.runner.wake()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.audit_memory.close()
        self.engine.dispose()


def build_runtime(settings: Settings, *, prober: Prober | None = None) -> Runtime:
    gc_tuning.tune()  # the process holds every site's session: the default collector spends 40 % of a cycle
    url = settings.effective_database_url
    if settings.auto_migrate:
        migrate.upgrade(url)
    engine = make_engine(url)
    validator = TokenValidator(settings) if settings.auth_mode == "keystone" else None
    return Runtime(settings=settings, engine=engine, factory=make_session_factory(engine),
                   box=SecretBox(load_keys(settings)), validator=validator, prober=prober,
                   lanes=Lanes(background_floor=settings.background_floor),
                   audit_memory=AuditMemory(full_every=settings.audit_full_every,
                                            concurrency=settings.audit_concurrency))
