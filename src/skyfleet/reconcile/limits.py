"""Per-site rate limit of one process: a token bucket per site, so a burst of tasks for one site
(many operations at once) reaches it at a pace it can take, whatever the other sites do.

The fleet-wide caps (global concurrency per process, tasks in flight per site) are enforced where
tasks are leased; this bucket only spaces the starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from skyfleet.reconcile.policy import Clock


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class SiteRateLimiter:
    def __init__(self, *, rate: float, burst: int, clock: Clock) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def reserve(self, site_id: str) -> float:
        """Take one token for ``site_id``; returns how long the caller must wait before using it."""
        with self._lock:
            now = self._clock.monotonic()
            bucket = self._buckets.setdefault(site_id, _Bucket(self._burst, now))
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
            bucket.tokens -= 1.0
            if len(self._buckets) > 50_000:  # forget idle sites
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self._burst}
            return 0.0 if bucket.tokens >= 0 else -bucket.tokens / self._rate

    def acquire(self, site_id: str) -> float:
        """Wait for a token of ``site_id``; returns the seconds waited."""
        wait = self.reserve(site_id)
        if wait > 0:
            self._clock.sleep(wait)
        return wait
