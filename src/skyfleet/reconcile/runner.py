"""Everything a process runs for the engine, built from settings: engine, worker pool, broker
wake-ups. ``skyfleet serve`` (embedded) and ``skyfleet worker`` (distributed) both use it, so the two
deployments share one code path and differ only in configuration.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from skyfleet.config import Settings
from skyfleet.drivers.openstack.pool import SitePool as SitePool  # the runtime builds one per process
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.lanes import Lanes
from skyfleet.reconcile.pool import WorkerPool
from skyfleet.reconcile.wakeup import Notifier, WakeListener
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(per_site=settings.engine_per_site, site_rate=settings.engine_site_rate,
                        site_burst=settings.engine_site_burst, lease_seconds=settings.engine_lease_seconds,
                        site_timeout=settings.site_timeout, retry=settings.task_retry,
                        heartbeat_seconds=settings.engine_heartbeat_seconds, worker_ttl=settings.engine_worker_ttl)


class EngineRunner:
    """Starts and stops the worker side of one process; ``wake`` announces new work."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session], box: SecretBox, *,
                 concurrency: int | None = None, run_workers: bool = True, lanes: Lanes | None = None,
                 pool: SitePool | None = None) -> None:
        self.engine = Engine(factory, box=box, config=engine_config(settings), pool=pool)
        self.engine.on_new_work = lambda: self.wake("stage")
        self.embedded = settings.effective_database_url.startswith("sqlite")
        self.pool: WorkerPool | None = None
        if run_workers:
            self.pool = WorkerPool(self.engine, concurrency=concurrency or settings.engine_concurrency,
                                   poll_interval=settings.engine_poll_interval, batch=settings.engine_batch,
                                   lanes=lanes)
        self.notifier = Notifier(settings.broker_url) if settings.broker_url else None
        self.listener = (WakeListener(settings.broker_url, self._woken)
                         if settings.broker_url and run_workers else None)

    def _woken(self) -> None:
        if self.pool is not None:
            self.pool.wake()

    def start(self) -> None:
        if self.pool is not None:
            if self.embedded:  # one process owns this database: every lease left is a dead self's
                self.engine.reclaim_all()
            self.pool.start()
        if self.listener is not None:
            self.listener.start()
        log.info("reconcile engine started (owner %s, broker %s)", self.engine.owner,
                 "on" if self.notifier else "off")

    def wake(self, reason: str = "submit") -> None:
        """New work is in the database: wake this process's pool and, through the broker, every worker."""
        self._woken()
        if self.notifier is not None:
            self.notifier.publish(reason)

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.pool is not None:
            self.pool.stop()
        if self.notifier is not None:
            self.notifier.close()
