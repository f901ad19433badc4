"""The worker pool of one process: a dispatcher thread that leases due tasks while slots are free,
an executor that runs them (the global concurrency cap), and a heartbeat that keeps this worker's
row alive, renews the leases of tasks in flight, hands back the tasks of dead workers and, now and
then, starts operation stages a crash left unstarted. It sleeps until woken (new work submitted here,
a broker message, a slot freed, tasks handed back) or until the poll interval passes, so it works
with no broker at all. Each user-started task it runs is counted in the process's priority lanes
(``lanes``), which hold the periodic fan-outs to their floor meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import tenacity
from sqlalchemy.exc import SQLAlchemyError

from skyfleet.reconcile.engine import Engine, Work
from skyfleet.reconcile.lanes import Lanes
from skyfleet.reconcile.policy import db_retrying

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, engine: Engine, *, concurrency: int, poll_interval: float, batch: int = 64,
                 lanes: Lanes | None = None) -> None:
        self.engine = engine
        self.lanes = lanes
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.batch = batch
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="task")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()  # lease token -> tasks in flight under it
        self._running: set[str] = set()  # task ids executing in this process
        self._threads: list[threading.Thread] = []
        self._last_recovery: float | None = None
        self.completed = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(self._held.values())

    def start(self) -> None:
        for name, target in (("dispatch", self._dispatch_loop), ("heartbeat", self._heartbeat_loop)):
            thread = threading.Thread(target=target, name=f"skyfleet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop leasing; tasks in flight finish (up to ``timeout``) and are recorded."""
        self._stop.set()
        self._wake.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
        for thread in self._threads:
            thread.join(timeout)
        try:
            self.engine.retire()
        except SQLAlchemyError as exc:
            log.warning("cannot remove this worker's row (%s); it expires by itself", type(exc).__name__)

    def _run(self, work: Work) -> None:
        lanes = self.lanes if work.leased.by_user else None
        if lanes is not None:
            lanes.user_started()
        try:
            self.engine.run(work)
        except Exception:
            log.exception("task %s could not be run", work.leased.task_id)
        finally:
            if lanes is not None:
                lanes.user_finished()
            with self._lock:
                self._held[work.leased.owner] -= 1
                if self._held[work.leased.owner] <= 0:
                    del self._held[work.leased.owner]
                self._running.discard(work.leased.task_id)
                self.completed += 1
            self._wake.set()

    def _fill(self) -> int:
        free = self.concurrency - self.in_flight
        if free <= 0:
            return 0
        batch = self.engine.lease(min(free, self.batch))
        duplicates: list[Work] = []
        with self._lock:
            fresh = []
            for work in batch:
                if work.leased.task_id in self._running:
                    duplicates.append(work)
                    continue
                self._running.add(work.leased.task_id)
                self._held[work.leased.owner] += 1
                fresh.append(work)
        for work in duplicates:
            # Our own lease on this task expired while a thread here still runs it (a stalled heartbeat):
            # never run it twice at once; the running attempt's result is fenced off and the task comes
            # back later, when observing the site shows what that attempt did.
            log.warning("task %s is still running here after its lease expired; giving it back",
                        work.leased.task_id)
            self.engine.give_back(work, delay=self.engine.config.lease_seconds)
        for work in fresh:
            self._executor.submit(self._run, work)
        return len(fresh)

    def _fill_retrying(self) -> int:
        """``_fill``, retried while the database is unreachable (0.5 s doubling to 10 s) until it works
        or the pool stops (then 0)."""
        def warn(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("cannot lease tasks, database unreachable (%s); retrying", type(error).__name__)

        retrying = db_retrying(sleep=self._stop.wait, first=0.5, cap=10.0,
                               stop=lambda _state: self._stop.is_set(), on_retry=warn)
        try:
            return int(retrying(self._fill))
        except SQLAlchemyError:
            return 0  # stopping

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            leased = self._fill_retrying()
            if leased and self.in_flight < self.concurrency:
                continue  # there may be more due work right now
            self._wake.wait(self.poll_interval)

    def beat(self) -> None:
        """One heartbeat: this worker is alive, its leases renewed, dead workers' tasks handed back; and,
        once per lease period, stages left unstarted are started. Raises SQLAlchemyError."""
        with self._lock:
            owners = list(self._held)
        if self.engine.heartbeat(owners):
            self._wake.set()
        now = self.engine.clock.monotonic()
        if self._last_recovery is None or now - self._last_recovery >= self.engine.config.lease_seconds:
            self._last_recovery = now
            self.engine.recover_stages()

    def _heartbeat_loop(self) -> None:
        period = max(0.2, min(self.engine.config.heartbeat_seconds, self.engine.config.lease_seconds / 3))
        while True:
            try:
                self.beat()
            except SQLAlchemyError as exc:
                log.warning("heartbeat failed (%s); leases held: %d", type(exc).__name__, self.in_flight)
            if self._stop.wait(period):
                return
