"""Test doubles and request builders shared by several test modules."""

from __future__ import annotations

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
