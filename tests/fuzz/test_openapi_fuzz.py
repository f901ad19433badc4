"""Fuzz every operation of the API from its own OpenAPI document, as a fleet admin and as a tenant.

Why it exists: hand-written tests check the bad inputs someone thought of; schemathesis generates
thousands from /openapi.json (valid and invalid bodies, odd strings, huge numbers, missing fields)
and checks three promises of docs/api.md on every answer: no 5xx, the body matches the documented
schema, the status is one the document lists. In-process (ASGI), on SQLite, with a few sites,
desired resources, quotas and an operation created first, and path parameters pointed at those
rows now and then so that requests reach real rows, not only 404s.

Bounded for CI: ``SKYFLEET_FUZZ_EXAMPLES`` examples per operation (default 25, about 90 s for
both callers), derandomized so every run sends the same requests. The long run (``make fuzz-long``):

    SKYFLEET_FUZZ_EXAMPLES=50 pytest tests/fuzz -p no:cacheprovider -s   # >= 5,000 requests per caller

Totals (requests, 5xx, schema and status violations, seconds) are printed per caller; the test
fails listing the first failures when any count is not zero.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.deps import get_principal
from skyfleet.api.runtime import build_runtime
from tests.conftest import make_settings
from tests.engine_support import PUBLIC_KEY
from tests.support import ADMIN, TENANT, FakeProber, site_body

EXAMPLES = int(os.environ.get("SKYFLEET_FUZZ_EXAMPLES", "25"))
CHECKS = {"schema violations": response_schema_conformance, "undocumented statuses": status_code_conformance,
          "5xx": not_a_server_error}
pytestmark = pytest.mark.fuzz


@dataclass
class Tally:
    """What one caller's run sent and saw."""

    caller: str
    requests: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)
    in_calls: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        seen = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        codes = " ".join(f"{k}x{v}" for k, v in sorted(self.statuses.items()))
        return (f"fuzz as {self.caller}: {self.requests} requests in {time.monotonic() - self.started:.1f} s, "
                f"{seen} (examples per operation and mode: {EXAMPLES}; {self.in_calls:.1f} s in requests; "
                f"statuses {codes})")


@dataclass
class Fleet:
    app: FastAPI
    known: dict[str, list[str]]


def _seed(client: TestClient, switch: Callable[[Principal], None]) -> dict[str, list[str]]:
    """A few real rows for path parameters to point at; returns their references per parameter name."""
    switch(ADMIN)
    sites = []
    for name, labels in (("fz-1", {"tier": "edge"}), ("fz-2", {"tier": "core"}), ("fz-3", {})):
        made = client.post("/v1/sites", json=site_body(name, url=f"http://127.0.0.1:9/{name}/v3", labels=labels))
        assert made.status_code == 201, made.text
        sites += [name, made.json()["id"]]
    flavor = client.post("/v1/flavors", json={"spec": {"name": "fz.small", "vcpus": 1, "ram": 512}}).json()
    operation = client.post("/v1/operations", json={"kind": "site.probe", "sites": ["fz-1"]}).json()
    identity = [client.post("/v1/identity/projects", json={"spec": {"name": "fz-proj"}}).json(),
                client.post("/v1/identity/users", json={"spec": {"name": "fz-user", "password": "fz-Pass-1"}}).json(),
                client.put("/v1/identity/role-assignments", json={"spec": {"user": "fz-user", "project": "fz-proj",
                                                                           "role": "member"}}).json()]
    assert client.put("/v1/quota-classes/gold", json={"limits": {"cores": 40}}).status_code == 200
    assert client.put("/v1/quotas/p1", json={"quota_class": "gold", "limits": {"ram": 4096}}).status_code == 200
    assert client.put("/v1/projects/p1/mappings/fz-1", json={"remote_project_id": "r1"}).status_code == 200
    job = client.post("/v1.0/admin-p/os-sync", json={"resource_set": {
        "resource_type": "flavor", "resources": ["x"], "source": "fz-1", "target": ["fz-2"]}})
    assert job.status_code == 200, job.text
    switch(TENANT)
    keypair = client.post("/v1/keypairs", json={"spec": {"name": "fz-key", "public_key": PUBLIC_KEY}}).json()
    group = client.post("/v1/security-groups", json={"spec": {"name": "fz-web", "rules": []}}).json()
    assert client.post("/v1/address-pools", json={"name": "fz-pool", "cidr": "10.99.0.0/16"}).status_code == 201
    network = client.post("/v1/networks", json={"name": "fz-net", "pool": "fz-pool"}).json()
    switch(ADMIN)
    return {"ref": [*sites, flavor["id"], "fz.small", keypair["id"], "fz-key", group["id"], "fz-web",
                    network["id"], "fz-net", "fz-pool",
                    *(row[key] for row in identity for key in ("id", "name"))],
            "site": sites, "operation_id": [operation["id"]], "job_id": [job.json()["job_status"]["id"]],
            "project_id": ["p1", "admin-p"], "tenant": ["p1", "admin-p"], "target": ["p1"],
            "name": ["gold", "default"], "kind": ["servers", "networks", "volumes"]}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    # fanout_rate=0: the per-tenant rate limit (tested on its own) would answer most tenant requests 429.
    # events_stream_max_seconds: a live event stream answers its first poll and ends, instead of lasting 2 s.
    settings_ = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'fuzz.db'}", site_timeout=0.5,
                              fanout_rate=0, events_stream_max_seconds=0.05)
    runtime = build_runtime(settings_, prober=FakeProber())
    app = create_app(runtime, start_workers=False)

    def switch(principal: Principal) -> None:
        app.dependency_overrides[get_principal] = lambda: principal

    with TestClient(app) as client:
        known = _seed(client, switch)
    yield Fleet(app=app, known=known)
    app.dependency_overrides.clear()
    runtime.close()


def _schema(fleet: Fleet, principal: Principal) -> Any:
    fleet.app.dependency_overrides[get_principal] = lambda: principal
    return schemathesis.openapi.from_asgi("/openapi.json", fleet.app)




def _point_at_rows(case: Any, known: dict[str, list[str]]) -> None:
    """Now and then (deterministically) swap a generated path parameter for a real row's reference."""
    for key, value in list((case.path_parameters or {}).items()):
        choices = known.get(key)
        if choices:
            pick = zlib.crc32(str(value).encode("utf-8", "surrogatepass")) % (len(choices) + 1)
            if pick < len(choices):
                case.path_parameters[key] = choices[pick]


def _exercise(case: Any, fleet: Fleet, tally: Tally) -> None:
    _point_at_rows(case, fleet.known)
    began = time.monotonic()
    try:
        response = case.call()
    except Exception as exc:  # the app raised: behind a real server that is a 500 (count it, keep fuzzing)
        tally.requests += 1
        tally.counts["5xx"] += 1
        tally.statuses[500] = tally.statuses.get(500, 0) + 1
        if len(tally.failures) < 50:
            tally.failures.append(f"[5xx] {case.method} {case.formatted_path} raised {type(exc).__name__}: "
                                  f"{' | '.join(str(exc).strip().splitlines()[:4])} | {case.query}")
        return
    took = time.monotonic() - began
    tally.in_calls += took
    if took > 0.5 and len(tally.slow) < 20:
        tally.slow.append(f"{took:.1f}s {case.method} {case.formatted_path} -> {response.status_code}")
    tally.requests += 1
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    for name, check in CHECKS.items():
        try:
            case.validate_response(response, checks=[check])
        except (Exception, FailureGroup) as exc:  # a check failed: count it, keep fuzzing
            tally.counts[name] += 1
            if len(tally.failures) < 50:
                first = str(exc).strip().splitlines()[:6]
                tally.failures.append(f"[{name}] {case.method} {case.formatted_path} -> {response.status_code}: "
                                      f"{' | '.join(first)}")


FUZZ_SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def _drive(strategy: Any, fleet: Fleet, tally: Tally, examples: int = EXAMPLES) -> None:
    """Send ``examples`` cases drawn from ``strategy``."""

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=strategy)
    def run(case: Any) -> None:
        _exercise(case, fleet, tally)

    run()


def _fuzz(fleet: Fleet, principal: Principal, caller: str, request: pytest.FixtureRequest) -> None:
    """Every operation: its documented examples, then valid and invalid input, ``EXAMPLES`` cases each."""
    schema = _schema(fleet, principal)
    tally = Tally(caller)
    for result in schema.get_all_operations():
        operation = result.ok()
        for example in operation.get_strategies_from_examples():
            _drive(example, fleet, tally, examples=3)
        _drive(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), fleet, tally)
        if operation.query or operation.body or operation.path_parameters:  # else nothing can be made invalid
            with contextlib.suppress(Unsatisfiable):  # its parameters admit every value
                _drive(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), fleet, tally)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + tally.line())
        for line in tally.slow:
            reporter.write_line("  slow: " + line)
    if sum(tally.counts.values()):
        pytest.fail(f"{tally.line()}\n" + "\n".join(tally.failures[:15]), pytrace=False)


def test_fuzz_as_fleet_admin(fleet: Fleet, request: pytest.FixtureRequest) -> None:
    _fuzz(fleet, ADMIN, "fleet admin", request)


def test_fuzz_as_tenant(fleet: Fleet, request: pytest.FixtureRequest) -> None:
    _fuzz(fleet, TENANT, "tenant", request)
