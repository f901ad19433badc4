"""The worker pool never runs one task twice at once in a process, even when its lease expired."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from skyfleet.domains.operations.leases import Leased
from skyfleet.reconcile.engine import Work
from skyfleet.reconcile.lanes import Lanes
from skyfleet.reconcile.pool import WorkerPool


def work(task_id: str, owner: str, *, by_user: bool = True) -> Work:
    return Work(Leased(task_id=task_id, operation_id="op", site_id="s", site_name="s", kind="k", payload={},
                       attempts=1, owner=owner, by_user=by_user), auth={})


class FakeEngine:
    """Leases scripted batches; `run` blocks until released so tasks stay in flight."""

    def __init__(self, batches: list[list[Work]]) -> None:
        self.batches = batches
        self.config = SimpleNamespace(lease_seconds=3.0)
        self.ran: list[tuple[str, str]] = []
        self.given_back: list[tuple[str, str, float]] = []
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def lease(self, limit: int) -> list[Work]:
        return self.batches.pop(0) if self.batches else []

    def run(self, w: Work) -> Any:
        self.ran.append((w.leased.task_id, w.leased.owner))
        self.started.release()
        self.release.wait(5)

    def give_back(self, w: Work, *, delay: float) -> bool:
        self.given_back.append((w.leased.task_id, w.leased.owner, delay))
        return True


def test_a_task_still_running_here_is_given_back_not_run_again() -> None:
    engine = FakeEngine([[work("t1", "lease-a"), work("t2", "lease-a")], [work("t1", "lease-b")]])
    pool = WorkerPool(engine, concurrency=4, poll_interval=60)  # type: ignore[arg-type]
    assert pool._fill() == 2
    assert pool._fill() == 0  # t1 re-leased under a new token while the first run is still going
    assert engine.given_back == [("t1", "lease-b", 3.0)]
    engine.release.set()
    pool._executor.shutdown(wait=True)
    assert sorted(engine.ran) == [("t1", "lease-a"), ("t2", "lease-a")]
    assert pool.in_flight == 0 and pool.completed == 2


def test_a_finished_task_may_be_leased_and_run_again() -> None:
    engine = FakeEngine([[work("t1", "lease-a")], [work("t1", "lease-b")]])
    engine.release.set()
    pool = WorkerPool(engine, concurrency=2, poll_interval=60)  # type: ignore[arg-type]
    pool._fill()
    pool._executor.shutdown(wait=True)
    pool._executor = type(pool._executor)(max_workers=2)
    assert pool._fill() == 1
    pool._executor.shutdown(wait=True)
    assert engine.ran == [("t1", "lease-a"), ("t1", "lease-b")] and engine.given_back == []


def test_user_started_tasks_are_counted_in_the_lanes_while_they_run_and_periodic_ones_are_not() -> None:
    lanes = Lanes()
    engine = FakeEngine([[work("t1", "a"), work("t2", "a"), work("t3", "a", by_user=False)]])
    pool = WorkerPool(engine, concurrency=4, poll_interval=60, lanes=lanes)  # type: ignore[arg-type]
    assert pool._fill() == 3
    for _ in range(3):
        assert engine.started.acquire(timeout=5)
    assert lanes.user_in_flight == 2  # t3 belongs to an operation a periodic job started
    engine.release.set()
    pool._executor.shutdown(wait=True)
    assert lanes.user_in_flight == 0 and pool.completed == 3
