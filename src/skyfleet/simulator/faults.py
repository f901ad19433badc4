"""Per-site fault injection: what can go wrong with a simulated site, and how it is applied.

Why it exists: Skyfleet must survive sites that are down, hang, are slow, fail randomly, reject
credentials or are out of quota. Faults are plain data switched at run time (Python API or the
`/_sim/` admin endpoint); the server consults them before any service code runs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

HANG_LIMIT_S = 600.0  # a hung request is answered (503) after this, or at once when the fault is cleared

#: Service names accepted in `Faults.services` -> the URL segment of the service under a site.
SERVICE_SEGMENTS = {"identity": "identity", "compute": "compute", "image": "image", "network": "network",
                    "block-storage": "volume", "volume": "volume", "volumev3": "volume", "volumev2": "volume",
                    "placement": "placement"}


@dataclass(slots=True)
class Faults:
    down: bool = False  # the TCP connection is aborted without a response
    hang: bool = False  # no answer until the client gives up (or the fault is cleared)
    latency_ms: float = 0.0  # added before every answer
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # fraction of requests answered 503 in the service's error shape
    auth_fail: bool = False  # keystone answers 401 to authentication and token validation
    slow_image_bps: int = 0  # bytes/s cap on each image download (0 = no cap)
    slow_image_upload_bps: int = 0  # bytes/s cap on each image upload (0 = no cap)
    image_upload_fail_after: int = 0  # an image upload answers 500 once this many bytes came in (0 = never)
    image_download_cut_after: int = 0  # an image download's connection drops after this many bytes (0 = never)
    quota_exceeded: bool = False  # every create answers the service's over-quota error
    max_page: int = 0  # listings answer at most this many items a page (osapi_max_limit & co.); 0 = no cap
    services: list[str] = field(default_factory=list)  # services the faults above apply to; [] = every one

    def copy(self) -> Faults:
        return Faults(**asdict(self))

    def applies_to(self, segment: str) -> bool:
        """Whether these faults hit the service served under URL segment `segment` ("compute", "volume"...)."""
        return not self.services or any(SERVICE_SEGMENTS[name] == segment for name in self.services)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def delays(self) -> bool:
        return self.latency_ms > 0 or self.jitter_ms > 0

    def delay_s(self) -> float:
        jitter = random.uniform(0, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000.0

    def roll_error(self) -> bool:
        return self.error_rate > 0 and random.random() < self.error_rate


FAULT_NAMES = frozenset(f.name for f in fields(Faults))


def updated(current: Faults | None, changes: dict[str, Any]) -> Faults:
    """A new Faults with `changes` applied; unknown names and bad values raise ValueError."""
    unknown = set(changes) - FAULT_NAMES
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(FAULT_NAMES))}")
    result = current.copy() if current else Faults()
    for name, value in changes.items():
        kind = type(getattr(Faults(), name))
        if name == "services":
            result.services = _services(value)
        elif kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"fault {name} must be true or false")
            setattr(result, name, value)
        else:
            try:
                number = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"fault {name} must be a number") from None
            if number < 0 or (name == "error_rate" and number > 1):
                raise ValueError(f"fault {name} out of range: {value!r}")
            setattr(result, name, number)
    return result


def _services(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or \
            not all(isinstance(v, str) for v in value):
        raise ValueError("fault services must be a list of service names, e.g. [\"compute\"]")
    unknown = sorted(set(value) - set(SERVICE_SEGMENTS))
    if unknown:
        raise ValueError(f"unknown service(s) in fault services: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(SERVICE_SEGMENTS))}")
    return list(dict.fromkeys(value))


async def hang(is_hanging: Any, stopping: asyncio.Event) -> None:
    """Wait while `is_hanging()` holds, the server runs, and HANG_LIMIT_S has not passed."""
    waited = 0.0
    while is_hanging() and not stopping.is_set() and waited < HANG_LIMIT_S:
        await asyncio.sleep(0.05)
        waited += 0.05


BURST_S = 0.25  # how far a capped transfer that fell behind (a busy event loop) may catch up at once
MIN_SLEEP_S = 0.005  # a transfer less ahead than this goes on: ten uploads' 64 KiB reads, each with its own
# timer, would cost the event loop more than the copies (the average holds: the next wait is longer)


class Pace:
    """Holds one transfer to ``bps`` bytes per second on average since it started (0: no cap).

    Why a deadline and not a sleep per piece: sleeping ``len/bps`` after each write adds the time the
    writes themselves take, so ten parallel transfers on a busy simulator would each run slower than
    one alone for reasons that are the simulator's, not the link's. A transfer that fell behind may
    catch up by at most ``BURST_S`` seconds' worth, like a link that was briefly idle.
    """

    def __init__(self, bps: int) -> None:
        self.bps = bps
        self._start = time.monotonic()

    async def wait(self, done: int) -> None:
        """Wait until ``done`` bytes in total may have passed."""
        if self.bps <= 0:
            return
        now = time.monotonic()
        due = self._start + done / self.bps
        if due - now >= MIN_SLEEP_S:
            await asyncio.sleep(due - now)
        elif now - due > BURST_S:
            self._start += now - due - BURST_S


def piece_size(bps: int, uncapped: int = 65536) -> int:
    """How many bytes a capped download writes at once: about 20 writes a second, at most 256 KiB."""
    return uncapped if bps <= 0 else max(1, min(1 << 18, bps // 20))


async def throttled(parts: Iterable[bytes | memoryview], bps: int) -> AsyncIterator[bytes | memoryview]:
    """Yield ``parts``, each once the transfer's pace allows it (``bps`` bytes per second, 0: no cap)."""
    pace = Pace(bps)
    done = 0
    for part in parts:
        done += len(part)
        await pace.wait(done)
        yield part
