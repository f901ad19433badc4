"""The worker pool of one process: a dispatcher thread that leases due tasks while slots are free,
an executor that runs them (the global concurrency cap), and a heartbeat that renews the leases of
tasks in flight. It sleeps until woken (new work submitted here, a broker message, a slot freed) or
until the poll interval passes, so it works with no broker at all.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from skyfleet.reconcile.engine import Engine, Work

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, engine: Engine, *, concurrency: int, poll_interval: float, batch: int = 64) -> None:
        self.engine = engine
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

    def _run(self, work: Work) -> None:
        try:
            self.engine.run(work)
        except Exception:
            log.exception("task %s could not be run", work.leased.task_id)
        finally:
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

    def _dispatch_loop(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            self._wake.clear()
            try:
                leased = self._fill()
                pause = 0.5
            except SQLAlchemyError as exc:
                log.warning("cannot lease tasks, database unreachable (%s); retrying", type(exc).__name__)
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)
                continue
            if leased and self.in_flight < self.concurrency:
                continue  # there may be more due work right now
            self._wake.wait(self.poll_interval)

    def _heartbeat_loop(self) -> None:
        period = max(0.2, self.engine.config.lease_seconds / 3)
        while not self._stop.wait(period):
            with self._lock:
                owners = list(self._held)
            if not owners:
                continue
            try:
                self.engine.renew(owners)
            except SQLAlchemyError as exc:
                log.warning("cannot renew %d lease(s): %s", len(owners), type(exc).__name__)
