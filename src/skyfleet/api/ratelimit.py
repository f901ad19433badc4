"""Per-caller rate limit of requests that start work on many sites (and of failed sign-ins).

Why it exists: one request can fan out to every site (a keypair declared fleet-wide, a live read of
a site, an os-sync job); without a limit one tenant's loop costs every site calls and every other
tenant its share of the engine. A token bucket per caller (user and project) allows ``burst``
requests at once and ``rate`` per second after that; a refused request gets 429 with Retry-After.
The buckets live in a bounded TTL cache, so callers that went quiet cost nothing; written here
because the bucket is a dozen lines and no kept library fits a synchronous in-process limiter.
The sign-in route (``routes.signin``) uses its own buckets, per source address, and spends a token
only when the home Keystone refused the credentials (checking first, without spending, that one is left).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

from skyfleet.errors import ApiError


class TooManyRequests(ApiError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = max(1, math.ceil(retry_after))


class RateLimiter:
    """Token buckets keyed by caller; thread safe."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_callers: int = 100_000, unit: str = "requests that start work on sites",
                 caller: str = "one caller") -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._unit, self._caller = unit, caller
        idle = burst / rate if rate > 0 else 3600.0  # a bucket idle this long is full again: forget it
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(maxsize=max_callers, ttl=idle, timer=clock)
        self._lock = threading.Lock()

    def spend(self, key: str, what: str, *, take: bool = True) -> None:
        """Take one token of ``key``'s bucket or raise :class:`TooManyRequests` (with ``take`` false,
        only raise when the bucket is empty: a check before work whose failures alone are counted)."""
        if self._rate <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - then) * self._rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self._rate
                self._buckets[key] = (tokens, now)
                raise TooManyRequests(
                    f"{what}: more than {self._burst} {self._unit} in a burst "
                    f"({self._rate:g}/s after that) from {self._caller}; retry in {math.ceil(wait)} s", wait)
            self._buckets[key] = (tokens - 1.0, now) if take else (tokens, now)
