"""Per-site fault injection: what can go wrong with a simulated site, and how it is applied.

Why it exists: Skyfleet must survive sites that are down, hang, are slow, fail randomly, reject
credentials or are out of quota. Faults are plain data switched at run time (Python API or the
`/_sim/` admin endpoint); the server consults them before any service code runs.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, fields
from typing import Any

HANG_LIMIT_S = 600.0  # a hung request is answered (503) after this, or at once when the fault is cleared


@dataclass(slots=True)
class Faults:
    down: bool = False  # the TCP connection is aborted without a response
    hang: bool = False  # no answer until the client gives up (or the fault is cleared)
    latency_ms: float = 0.0  # added before every answer
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # fraction of requests answered 503 in the service's error shape
    auth_fail: bool = False  # keystone answers 401 to authentication and token validation
    slow_image_bps: int = 0  # bytes/s cap on image downloads (0 = no cap)
    quota_exceeded: bool = False  # every create answers the service's over-quota error

    def copy(self) -> Faults:
        return Faults(**asdict(self))

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
        if kind is bool:
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


async def hang(is_hanging: Any, stopping: asyncio.Event) -> None:
    """Wait while `is_hanging()` holds, the server runs, and HANG_LIMIT_S has not passed."""
    waited = 0.0
    while is_hanging() and not stopping.is_set() and waited < HANG_LIMIT_S:
        await asyncio.sleep(0.05)
        waited += 0.05


async def throttled_chunks(data: bytes, bps: int, chunk: int = 65536) -> Any:
    """Yield `data` in chunks, sleeping so that the rate stays under `bps` bytes per second."""
    if bps <= 0:
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]
        return
    step = max(1, min(chunk, bps // 10 or 1))
    for i in range(0, len(data), step):
        part = data[i : i + step]
        await asyncio.sleep(len(part) / bps)
        yield part
