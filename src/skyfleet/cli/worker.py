"""``skyfleet worker``: a process that only runs the reconcile engine (and the claimed periodic jobs).

Start any number of them, on any hosts, against the same PostgreSQL database and broker; each
leases due tasks from the database, so adding a worker adds throughput and killing one loses
nothing (its leases expire and are taken over). ``--metrics-port`` serves the task counters of this
process (or of every process of the host, in multiprocess mode) for Prometheus; the fleet's state is
exported by the API's ``/metrics`` only, since it is the same in every process.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from skyfleet import logs, telemetry
from skyfleet.api.runtime import build_runtime
from skyfleet.cli.server import freeze_heap
from skyfleet.config import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, concurrency: int | None = None, metrics_port: int | None = None,
               metrics_host: str = "127.0.0.1") -> None:
    logs.configure(settings.log_level, settings.log_format)
    if metrics_port is not None:
        telemetry.serve(metrics_port, metrics_host)
        log.info("metrics of this worker at http://%s:%d/metrics", metrics_host, metrics_port)
    runtime = build_runtime(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing tasks in flight, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    freeze_heap()
    runtime.start_workers(concurrency=concurrency)
    log.info("skyfleet worker ready (concurrency %d, database %s)",
             concurrency or settings.engine_concurrency, settings.effective_database_url.split("@")[-1])
    stop.wait()
    runtime.close()
