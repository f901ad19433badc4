"""Priority lanes: user-started work is never starved by periodic fan-outs in the same process.

Why it exists: the health audit and the inventory refresh each run their own thread pool (64 site
calls at once by default) in the process that also runs the engine's tasks. They share its cores (and
the GIL) and its database connections with the tasks users started, and a fleet-wide audit starting
made those tasks crawl for many seconds. One ``Lanes`` object per process is the gate: the worker
pool tells it how many user-started tasks it is running (``user_work``), and each periodic fan-out
takes a background slot around each site call (``background``). While any user task runs, at most
``floor`` background site calls run at once; when user work drains, the waiting calls go on at the
fan-out's own concurrency. The floor is at least 1, so periodic work slows down but never stops.

Nothing polls: waiting calls sleep on a condition that is notified when a background slot is freed
or when the last user task ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class Lanes:
    """The process-wide gate between user-started tasks and periodic site calls."""

    def __init__(self, *, background_floor: int = 2) -> None:
        self.floor = max(1, background_floor)
        self._cond = threading.Condition()
        self._user = 0
        self._background = 0

    @property
    def user_in_flight(self) -> int:
        with self._cond:
            return self._user

    @property
    def background_in_flight(self) -> int:
        with self._cond:
            return self._background

    def user_started(self) -> None:
        with self._cond:
            self._user += 1

    def user_finished(self) -> None:
        with self._cond:
            self._user = max(0, self._user - 1)
            if self._user == 0:
                self._cond.notify_all()  # back to full concurrency: every waiting call may go

    @contextmanager
    def user_work(self) -> Iterator[None]:
        """Count one user-started task as in flight while the block runs."""
        self.user_started()
        try:
            yield
        finally:
            self.user_finished()

    def _admits(self) -> bool:
        return self._user == 0 or self._background < self.floor

    def take_background(self) -> None:
        """Take one background slot (waits as :meth:`background` does); :meth:`free_background` gives it
        back, from any thread (the audit's cheap calls end on its event loop thread)."""
        with self._cond:
            self._cond.wait_for(self._admits)
            self._background += 1

    def try_take_background(self) -> bool:
        """Take one background slot if one is free now, without waiting."""
        with self._cond:
            if not self._admits():
                return False
            self._background += 1
            return True

    def free_background(self) -> None:
        with self._cond:
            self._background -= 1
            self._cond.notify()  # one freed slot: one waiting call may take it

    @contextmanager
    def background(self) -> Iterator[None]:
        """Hold one background slot while the block runs (one periodic site call): at once when no user
        task is in flight or fewer than ``floor`` background calls run, else when one of those holds."""
        self.take_background()
        try:
            yield
        finally:
            self.free_background()


def background_slot(lanes: Lanes | None) -> AbstractContextManager[None]:
    """``lanes.background()``, or no gate at all when there is none (callers outside a server)."""
    return lanes.background() if lanes is not None else nullcontext()
