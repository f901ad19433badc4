"""The priority gate: periodic site calls drop to a floor while user tasks run, and go back to full
concurrency when they end. Threads meet on events; no assertion depends on how fast they run."""

from __future__ import annotations

import threading

import pytest

from skyfleet.reconcile.lanes import Lanes, background_slot
from tests.support import HeldCalls

WAIT = 10.0  # a generous bound that is only reached when the gate is wrong


class Calls(HeldCalls):
    """Background calls, each on its own thread, that hold their slot until released."""

    def __init__(self, lanes: Lanes) -> None:
        super().__init__(WAIT)
        self.lanes = lanes
        self.threads: list[threading.Thread] = []

    def _call(self) -> None:
        with self.lanes.background():
            self.hold()

    def start(self, n: int) -> None:
        for _ in range(n):
            thread = threading.Thread(target=self._call, daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(WAIT)
        assert not any(t.is_alive() for t in self.threads)


def test_without_user_work_every_call_runs_at_once() -> None:
    lanes = Lanes(background_floor=2)
    calls = Calls(lanes)
    calls.start(6)
    calls.await_entered(6)  # all six hold a slot together: no floor applies
    assert lanes.background_in_flight == 6
    calls.finish()
    assert calls.most == 6 and lanes.background_in_flight == 0


def test_while_user_work_runs_background_calls_stay_at_the_floor_then_all_go_when_it_drains() -> None:
    lanes = Lanes(background_floor=2)
    lanes.user_started()
    lanes.user_started()
    calls = Calls(lanes)
    calls.start(6)
    calls.await_entered(2)
    assert not calls.entered.acquire(timeout=0.2)  # the other four wait
    assert lanes.background_in_flight == 2
    lanes.user_finished()
    assert not calls.entered.acquire(timeout=0.2)  # one user task still runs: still the floor
    lanes.user_finished()  # the last one: the waiting four are released together
    calls.await_entered(4)
    assert calls.inside == 6
    calls.finish()
    assert calls.most == 6


def test_a_freed_slot_lets_one_waiting_call_in_while_user_work_runs() -> None:
    lanes = Lanes(background_floor=1)
    with lanes.user_work():
        order: list[str] = []
        first_in, first_out = threading.Event(), threading.Event()

        def first() -> None:
            with lanes.background():
                order.append("first")
                first_in.set()
                first_out.wait(WAIT)

        def second() -> None:
            with lanes.background():
                order.append("second")

        a = threading.Thread(target=first)
        a.start()
        assert first_in.wait(WAIT)
        b = threading.Thread(target=second)
        b.start()
        b.join(0.2)
        assert b.is_alive() and order == ["first"]  # floor 1: the second call waits
        first_out.set()
        a.join(WAIT)
        b.join(WAIT)
        assert order == ["first", "second"] and lanes.user_in_flight == 1
    assert lanes.user_in_flight == 0


@pytest.mark.parametrize("asked", [0, -3])
def test_the_floor_is_never_below_one(asked: int) -> None:
    lanes = Lanes(background_floor=asked)
    assert lanes.floor == 1
    with lanes.user_work():
        calls = Calls(lanes)
        calls.start(3)
        calls.await_entered(1)  # periodic work still progresses while users are busy
        assert not calls.entered.acquire(timeout=0.2)
        calls.release.set()  # each call, released, frees its slot for the next
        calls.await_entered(2)
        calls.finish()
        assert calls.most == 1


def test_user_work_counts_even_when_the_task_raises() -> None:
    lanes = Lanes()
    with pytest.raises(RuntimeError), lanes.user_work():
        assert lanes.user_in_flight == 1
        raise RuntimeError("task failed")
    assert lanes.user_in_flight == 0


def test_no_gate_is_no_limit() -> None:
    with background_slot(None), background_slot(None):
        pass
    lanes = Lanes()
    with background_slot(lanes):
        assert lanes.background_in_flight == 1
    assert lanes.background_in_flight == 0
