"""``skyfleet worker``: a process that only runs the reconcile engine (and the claimed periodic jobs).

Start any number of them, on any hosts, against the same PostgreSQL database and broker; each
leases due tasks from the database, so adding a worker adds throughput and killing one loses
nothing (its leases expire and are taken over).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from skyfleet import logs
from skyfleet.api.runtime import build_runtime
from skyfleet.config import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, concurrency: int | None = None) -> None:
    logs.configure()
    runtime = build_runtime(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing tasks in flight, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runtime.start_workers(concurrency=concurrency)
    log.info("skyfleet worker ready (concurrency %d, database %s)",
             concurrency or settings.engine_concurrency, settings.effective_database_url.split("@")[-1])
    stop.wait()
    runtime.close()
