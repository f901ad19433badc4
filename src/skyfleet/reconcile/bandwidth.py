"""Bytes-per-second caps shared by every transfer of this process that touches the same site.

Why it exists: an image rollout streams to many sites at once and must not saturate a site's link.
One bucket per (direction, site) is shared by all the threads copying from or to that site, so the
cap holds however many copies run. A plain token bucket: the rate-limit libraries at hand count
calls, not bytes, and block a whole event loop rather than one worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator


class ByteBucket:
    """Allow ``rate`` bytes per second on average, with one second of burst."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = float(rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.rate
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Wait until ``count`` bytes may pass."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate) - count
            self._at = now
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


_BUCKETS: dict[tuple[str, str, float], ByteBucket] = {}
_LOCK = threading.Lock()


def bucket(direction: str, site_id: str, rate: float) -> ByteBucket | None:
    """The process-wide bucket of one site's link in one direction (None: no cap)."""
    if rate <= 0:
        return None
    key = (direction, site_id, float(rate))
    with _LOCK:
        found = _BUCKETS.get(key)
        if found is None:
            found = _BUCKETS[key] = ByteBucket(rate)
        return found


def capped(chunks: Iterable[bytes], *buckets: ByteBucket | None) -> Iterator[bytes]:
    """``chunks`` passed through every given bucket."""
    active = [b for b in buckets if b is not None]
    for chunk in chunks:
        for item in active:
            item.take(len(chunk))
        yield chunk
