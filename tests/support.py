"""Test doubles and request builders shared by several test modules."""

from __future__ import annotations

import threading
from typing import Any

from skyfleet.api.auth import Principal
from skyfleet.drivers.base import ProbeResult, ServiceProbe


class FakeProber:
    """Stands in for a site probe: each auth_url maps to a scripted result."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.degraded: set[str] = set()
        self.calls: list[str] = []

    def __call__(self, auth: dict[str, Any]) -> ProbeResult:
        url = auth["auth_url"]
        self.calls.append(url)
        if url in self.down:
            return ProbeResult(reachable=False, error="cannot connect: ConnectFailure", latency_ms=1.0)
        compute_ok = url not in self.degraded
        return ProbeResult(
            reachable=True, region_name=auth.get("region_name"), latency_ms=2.0,
            availability_zones=["nova"],
            services=[
                ServiceProbe(type="identity", endpoint=url, ok=True, version="3.14"),
                ServiceProbe(type="compute", endpoint=url + "/compute", ok=compute_ok, version="2.1",
                             max_microversion="2.96", error=None if compute_ok else "HTTP 503"),
            ],
        )


def site_body(name: str, *, url: str | None = None, password: str = "s3cret-pass-word", **extra: Any
              ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "auth": {"auth_url": url or f"http://{name}.example.test:5000/v3", "username": "admin",
                 "password": password, "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default", "region_name": "RegionOne"},
    }
    body.update(extra)
    return body


# Callers for API tests that switch who is asking (see the `as_user` fixture in tests/api/conftest.py).
ADMIN = Principal(user_id="a", user_name="admin", project_id="admin-p", project_name="admin", roles=("admin",),
                  is_admin=True)
TENANT = Principal(user_id="t", user_name="tenant", project_id="p1", project_name="p1", roles=("member",))


class HeldCalls:
    """Counts calls that run at once, each held until ``release`` is set: ``hold()`` is the body of one
    call; ``most`` the most seen together. Threads meet on a semaphore and an event, never on timing."""

    def __init__(self, wait: float) -> None:
        self.wait = wait  # a generous bound, reached only when the code under test is wrong
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def hold(self) -> None:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.entered.release()
        self.release.wait(self.wait)
        with self.lock:
            self.inside -= 1

    def await_entered(self, n: int) -> None:
        for _ in range(n):
            assert self.entered.acquire(timeout=self.wait), "a call never started"
