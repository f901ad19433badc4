"""Periodic jobs run by every Skyfleet process; each interval's run is claimed in the database.

Several processes may run the scheduler: the claim (see ``domains.schedules``) makes exactly one
of them run each job per interval, and a dead process never blocks the job for longer than that.

Each claimed run goes on a thread of its own, so a long job (a 10,000-site health audit, a full
inventory refresh) never holds back another job's due time: before, the jobs ran one after another on
the scheduler's thread and the drift audit started whenever the audit ahead of it ended. A job whose
previous run in this process is still going is not claimed again until it ends, nor is one whose
``group`` has a run going (the incremental and the full inventory refresh write the same rows; the
drift audit and the converge pass submit work for the same resources; audit shards share the audit's
memory): those run one after another, as all jobs did before.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.schedules import service as schedules

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    interval: float
    run: Callable[[], object]
    group: str | None = None  # jobs of one group never run at once in a process


class Scheduler:
    """Runs claimed periodic jobs in one background thread."""

    def __init__(self, factory: sessionmaker[Session], jobs: list[PeriodicJob], *, tick: float = 1.0) -> None:
        self._factory = factory
        self._jobs = jobs
        self._tick = tick
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: dict[str, threading.Thread] = {}  # job name -> its run in progress (background mode)
        self._background = False
        self._started: dict[str, float] = {}  # job name -> when this process last started it (monotonic)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> None:
        self._background = True
        self._thread = threading.Thread(target=self._loop, name="skyfleet-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in [self._thread, *self._running.values()]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def run_soon(self, name: str) -> None:
        """Make job ``name`` due now, fleet-wide."""
        with transaction(self._factory) as session:
            schedules.run_now(session, name=name, now=utcnow())
        self._wake.set()

    def run_due(self) -> list[str]:
        """Run every job whose interval has come and that this process claimed; returns their names.
        Started by :meth:`start`, each run goes on its own thread; called directly, runs happen here."""
        ran = []
        for name in [name for name, run in self._running.items() if not run.is_alive()]:
            del self._running[name]
        # the job this process started least recently first: within a busy group, turns go round
        for job in sorted(self._jobs, key=lambda job: self._started.get(job.name, 0.0)):
            if job.name in self._running:
                continue  # still running: its next interval is claimed once it ends
            if job.group is not None and any(other.group == job.group and other.name in self._running
                                             for other in self._jobs):
                continue  # its group is busy: claimed once that run ends
            with transaction(self._factory) as session:
                won = schedules.claim(session, name=job.name, interval=job.interval, owner=self.owner,
                                      now=utcnow())
            if not won:
                continue
            ran.append(job.name)
            self._started[job.name] = time.monotonic()
            if self._background:
                run = threading.Thread(target=self._run, args=(job,), name=f"skyfleet-job-{job.name}", daemon=True)
                self._running[job.name] = run
                run.start()
            else:
                self._run(job)
        return ran

    @staticmethod
    def _run(job: PeriodicJob) -> None:
        try:
            job.run()
        except Exception:
            log.exception("periodic job %s failed", job.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except SQLAlchemyError as exc:
                log.warning("scheduler cannot reach the database: %s", type(exc).__name__)
            self._wake.wait(self._tick)
            self._wake.clear()
