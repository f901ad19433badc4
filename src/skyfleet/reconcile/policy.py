"""Time and backoff as swappable data: a clock the engine reads (fake in tests, so backoff tests take
no time), the retry delay of attempt n under a :class:`~skyfleet.config.RetryPolicy`, and the one way
the engine retries a database call (``db_retrying``). All backoff is tenacity's exponential wait; the
task policy adds its multiplicative jitter on top.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import tenacity
from tenacity.wait import wait_base

from skyfleet.config import RetryPolicy


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to (``advance``) or when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))


class JitteredWait(wait_base):
    """tenacity's exponential wait plus a random ``0..jitter`` fraction of it, capped at ``cap``."""

    def __init__(self, inner: wait_base, *, jitter: float, cap: float, rng: Callable[[], float]) -> None:
        self.inner, self.jitter, self.cap, self.rng = inner, jitter, cap, rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return min(self.cap, self.inner(retry_state) * (1.0 + self.jitter * self.rng()))


def policy_wait(policy: RetryPolicy, rng: Callable[[], float] = random.random) -> wait_base:
    """The wait strategy of ``policy``: ``min(max_delay, initial * multiplier ** (n - 1))`` plus jitter."""
    exponential = tenacity.wait_exponential(multiplier=policy.initial, exp_base=policy.multiplier,
                                            max=policy.max_delay)
    return JitteredWait(exponential, jitter=policy.jitter, cap=policy.max_delay, rng=rng)


def _attempt(number: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, number)
    return state


def backoff(policy: RetryPolicy, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, with jitter."""
    return float(policy_wait(policy, rng)(_attempt(attempt)))


def db_retrying(*, sleep: Callable[[float], Any], first: float, cap: float,
                stop: Callable[[tenacity.RetryCallState], bool],
                on_retry: Callable[[tenacity.RetryCallState], None] | None = None) -> tenacity.Retrying:
    """Retry a call while the database is unreachable (SQLAlchemyError): waits ``first``, doubling up
    to ``cap``; ``stop`` sees the upcoming sleep (``retry_state.upcoming_sleep``); the last error is
    re-raised when it stops."""
    from sqlalchemy.exc import SQLAlchemyError

    return tenacity.Retrying(wait=tenacity.wait_exponential(multiplier=first, max=cap), stop=stop, sleep=sleep,
                             retry=tenacity.retry_if_exception_type(SQLAlchemyError), reraise=True,
                             before_sleep=on_retry)
