"""Kingbird's API unit tests replayed over HTTP against Skyfleet.

Why it exists: those tests build a pecan test app (``pecan.testing.load_test_app``) and send it
requests through webtest, naming the caller with the headers Keystone's middleware would set
(``X-Tenant-Id``, ``X-Role``; Kingbird's ``restcomm`` makes ``admin`` a fleet admin). Here the same
webtest ``TestApp`` is handed a WSGI bridge to Skyfleet's ASGI app instead, whose caller is built
from those headers (standing in for the token validation), so each test's own requests and
assertions run unchanged against Skyfleet. Tests that call Kingbird's classes directly or assert on
Kingbird's internal mocks cannot apply; they are listed in :data:`NOT_APPLICABLE` with the reason.

Skyfleet is configured as the Kingbird those tests expect: its default quota class holds the
defaults Kingbird's configuration ships (``kingbird_global_limit``).
"""

from __future__ import annotations

import io
import sys
import tempfile
import unittest
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from fastapi import Request
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.deps import ANONYMOUS, get_principal
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import service as quotas
from tests.conftest import make_settings
from tests.kingbird_compat import kbsource

MODULES = (
    "kingbird.tests.unit.api.test_root_controller",
    "kingbird.tests.unit.api.v1.controllers.test_quota_manager",
    "kingbird.tests.unit.api.v1.controllers.test_quota_class",
    "kingbird.tests.unit.api.v1.controllers.test_sync_manager",
    "kingbird.tests.unit.api.v1.controllers.test_quota_manager_v1",
)

MOCK_DATA = "its expected answer is data Kingbird's mocked database or engine returns, which Skyfleet never sees"
DIRECT = "calls Kingbird's controller class directly, not over HTTP"
MOCK_CALLS = "asserts on calls to Kingbird's internal mocks (database, Nova client, RPC)"
MOCK_REGION = "its source region and resource exist only in Kingbird's mocked endpoint cache and Nova client"
V11 = "Kingbird API v1.1 (policy-file authorisation, mocked): Skyfleet offers v1.0, the API python-kingbirdclient uses"
NOT_APPLICABLE: dict[str, str] = {
    **{f"test_quota_manager.TestQuotaManager.{name}": MOCK_DATA for name in (
        "test_get_all_admin", "test_get_tenant_with_admin", "test_get_tenant_without_admin",
        "test_get_usages_admin", "test_get_usages_another_tenant_admin", "test_delete_admin",
        "test_delete_all_admin")},
    **{f"test_quota_class.TestQuotaClassController.{name}": MOCK_DATA for name in (
        "test_get_all_admin", "test_put_admin", "test_delete_all_admin")},
    **{f"test_sync_manager.TestResourceManager.{name}": DIRECT for name in (
        "test_post_request_data", "test_entries_to_database")},
    **{f"test_sync_manager.TestResourceManager.{name}": MOCK_CALLS for name in (
        "test_post_keypair_sync", "test_post_flavor_sync_admin", "test_delete_jobs", "test_get_job",
        "test_get_active_job", "test_get_detail_job_by_id")},
    **{f"test_sync_manager.TestResourceManager.{name}": MOCK_REGION for name in (
        "test_post_no_keypairs_in_region", "test_post_no_flavors_in_source_region")},
    "test_sync_manager.TestResourceManager.test_post_image_sync": MOCK_CALLS,
    "test_sync_manager.TestResourceManager.test_post_no_images_in_source_region":
        "its source region and image exist only in Kingbird's mocked endpoint cache and Glance client",
    "test_sync_manager.TestResourceManager.test_delete_in_progress_job":
        "expects a KeyError raised inside Kingbird's pecan test app, with the job state from its mocked database",
}
V11_MODULE = "test_quota_manager_v1."
# Kingbird's tests that fail on purpose: Skyfleet differs there (docs/kingbird.md says why).
KNOWN_DIFFERENCES: dict[str, str] = {
    "test_quota_manager.TestQuotaManager.test_delete_invalid_quota":
        "expects 404 for an unknown resource name; Kingbird's controller code answers 400, as Skyfleet does",
}


def short_id(test: unittest.TestCase) -> str:
    return test.id().removeprefix("kingbird.tests.unit.api.v1.controllers.").removeprefix("kingbird.tests.unit.api.")


def principal_from_headers(request: Request) -> Principal:
    """The caller Kingbird's unit tests describe with Keystone middleware's headers."""
    project = request.headers.get("X-Tenant-Id")
    if project is None:
        return ANONYMOUS
    roles = tuple(r.strip() for r in (request.headers.get("X-Role") or "").split(",") if r.strip())
    return Principal(user_id=request.headers.get("X-User-Id", "kingbird-test-user"), user_name=None,
                     project_id=project, project_name=None, roles=roles or ("member",), is_admin="admin" in roles)


class SkyfleetWSGI:
    """A WSGI application that forwards each request to Skyfleet's ASGI app (for webtest)."""

    def __init__(self, runtime: Runtime) -> None:
        app = create_app(runtime, start_workers=False)
        app.dependency_overrides[get_principal] = principal_from_headers
        self.client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=True)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        url = environ.get("PATH_INFO", "/") + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
        response = self.client.request(environ["REQUEST_METHOD"], url, headers=headers, content=body)
        start_response(f"{response.status_code} {response.reason_phrase}",
                       [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length",)])
        return [response.content]


@dataclass
class Outcome:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)


def kingbird_defaults() -> dict[str, int]:
    """The defaults Kingbird's configuration ships (``[kingbird_global_limit] quota_*``)."""
    from kingbird.common import config as kb_config

    return {opt.name.removeprefix("quota_"): int(opt.default) for _, opts in kb_config.list_opts()
            if _ == "kingbird_global_limit" for opt in opts}


def _runtimes(workdir: Path, defaults: dict[str, int]) -> Iterator[Runtime]:
    n = 0
    while True:
        n += 1
        path = workdir / f"app{n}"
        path.mkdir()
        runtime = build_runtime(make_settings(path))
        with transaction(runtime.factory) as session:
            quotas.set_class(session, name=quotas.DEFAULT_CLASS, limits=defaults)
        yield runtime


def _tests(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _tests(item)
        else:
            yield item


def run_unit_api_tests() -> Outcome:
    """Run every test of :data:`MODULES`; each gets a fresh Skyfleet (SQLite) behind its test app."""
    kbsource.prepare_imports()
    import importlib

    modules = [importlib.import_module(name) for name in MODULES]
    root_module = modules[0]
    outcome, made = Outcome(), []
    with tempfile.TemporaryDirectory(prefix="kb-replay-") as tmp:
        runtimes = _runtimes(Path(tmp), kingbird_defaults())

        def load_test_app(_config: Any) -> Any:
            import webtest

            runtime = next(runtimes)
            made.append(runtime)
            return webtest.TestApp(SkyfleetWSGI(runtime))

        for module in modules:
            for test in _tests(unittest.defaultTestLoader.loadTestsFromModule(module)):
                name = short_id(test)
                reason = NOT_APPLICABLE.get(name) or (V11 if name.startswith(V11_MODULE) else None)
                if reason:
                    outcome.not_applicable[name] = reason
                    continue
                result = unittest.TestResult()
                with mock.patch.object(root_module, "load_test_app", load_test_app):
                    test.run(result)
                problems = result.failures + result.errors
                if problems:
                    outcome.failed[name] = problems[0][1].strip().splitlines()[-1][:300]
                elif result.skipped:
                    outcome.not_applicable[name] = f"skipped by Kingbird: {result.skipped[0][1]}"
                else:
                    outcome.passed.append(name)
                while made:
                    made.pop().close()
    return outcome


def report(title: str, outcome: Outcome, known: dict[str, str] | None = None,
           out: io.TextIOBase | Any = sys.stdout) -> str:
    """The counts, then each failure (with the documented difference it is, if it is one) and each
    test that does not apply."""
    known = known or {}
    lines = [f"{title}: {len(outcome.passed)} passed, {len(outcome.failed)} failed, "
             f"{len(outcome.not_applicable)} not applicable"]
    lines += [f"  FAILED {name}: " + (f"documented difference: {known[name]}" if name in known else why[:300])
              for name, why in sorted(outcome.failed.items())]
    lines += [f"  N/A    {name}: {why}" for name, why in sorted(outcome.not_applicable.items())]
    text = "\n".join(lines)
    print(text, file=out)
    return text





def run_in_subprocess(module: str, workdir: Path, timeout: float) -> Outcome:
    """Run ``module``'s ``main`` in a fresh interpreter: Kingbird's and tempest's tests share oslo.config's
    global ``CONF`` (parsed once per process) and patch process-wide state, so each suite gets its own."""
    import json
    import os
    import subprocess

    out = workdir / f"{module.rsplit('.', 1)[-1]}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-m", module, str(out), str(workdir)], env=env, timeout=timeout,
                          capture_output=True, text=True, check=False)
    if not out.exists():
        raise AssertionError(f"{module} stopped ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return Outcome(**json.loads(out.read_text()))


def write_outcome(outcome: Outcome, path: str) -> None:
    import dataclasses
    import json

    Path(path).write_text(json.dumps(dataclasses.asdict(outcome)))


if __name__ == "__main__":
    write_outcome(run_unit_api_tests(), sys.argv[1])
