"""Group commit: the small writes many threads ask for at about the same time, in one transaction.

Why it exists: a fan-out's worker threads each record an intent before changing a site and an outcome
after it: two transactions per task, each with its own session, BEGIN and COMMIT, all waiting on the
database's one writer (SQLite) and on the GIL. Profiled on a 1,000-site keypair fan-out once the site
calls were cheap, these transactions were most of the process's CPU per site. Here a writer thread
takes every write waiting at that moment and runs them in one transaction, in arrival order.

What a caller sees is unchanged: :meth:`GroupCommit.run` returns only once its write is committed (an
intent is on disk before the site is changed, an outcome before the slot is freed), and raises what
its write raised. When a batch fails (a database error, or one write raising), nothing of it was
committed and each write of it is run again alone, in its own transaction, so a write fails only for
its own reason. Hand-written rather than a library's: it is a queue, a thread and a loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.engine import transaction

T = TypeVar("T")
_IDLE_SECONDS = 2.0  # the writer thread ends after this long without work (started again on demand)

_Item = tuple[Callable[[Session], Any], "Future[Any]"]


class GroupCommit:
    def __init__(self, factory: sessionmaker[Session], *, max_batch: int = 128) -> None:
        self.factory = factory
        self.max_batch = max(1, max_batch)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.batches = 0  # transactions committed (for tests and benchmarks)

    def run(self, write: Callable[[Session], T]) -> T:
        """Run ``write`` in a transaction shared with the other writes waiting now; its result once committed."""
        future: Future[T] = Future()
        self._queue.put((write, future))
        self._ensure_writer()
        return future.result()

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._loop, name="skyfleet-group-commit", daemon=True)
                self._writer.start()

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # a put after this check starts a new writer (the lock orders them)
                        self._writer = None
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        results: list[Any] = []
        if len(batch) > 1:
            try:
                with transaction(self.factory) as session:
                    results = [write(session) for write, _ in batch]
            except BaseException:  # nothing committed: each write runs again alone
                results = []
            else:
                self.batches += 1
                for (_, future), result in zip(batch, results, strict=True):
                    future.set_result(result)
                return
        for write, future in batch:
            try:
                with transaction(self.factory) as session:
                    result = write(session)
            except BaseException as exc:  # handed to the caller (never lost with this thread)
                future.set_exception(exc)
            else:
                self.batches += 1
                future.set_result(result)
