"""JSON log lines: the correlation ids (request, principal, operation, task, site) on every line,
from the API and from the engine, and never a secret (the redaction applies to structured fields too)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import BaseModel

from skyfleet import log_context, logs
from skyfleet.api import access
from skyfleet.api.app import create_app
from skyfleet.api.deps import get_principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.reconcile.kinds import REGISTRY, SiteContext, TaskKind, register
from skyfleet.secrets import SecretBox
from tests.engine_support import fresh_clock, submit
from tests.support import TENANT, site_body

SECRET = "hunter2-correct-horse"
probe_log = logging.getLogger("skyfleet.test.probe")


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """A handler as ``logs.configure(fmt="json")`` makes it, on a logger of the test; returns the parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter_for("json"))
    root = logging.getLogger("skyfleet")
    root.addHandler(handler)
    logs.install_redaction(root)
    level = root.level
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_mask_secrets_in_the_message_in_extra_fields_and_in_traces(
        json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    logs.SECRETS.add(SECRET)
    try:
        probe_log.warning("login with password=%s to %s", "pa55word-x", "http://u:urlpass@keystone:5000/v3")
        probe_log.info("site answered", extra={"body": f'{{"token": "{SECRET}"}}', "attempt": 3})
        try:
            raise RuntimeError(f"auth failed with {SECRET}")
        except RuntimeError:
            probe_log.exception("boom")
    finally:
        logs.SECRETS.discard(SECRET)
    first, second, third = json_lines()
    text = json.dumps([first, second, third])
    for secret in (SECRET, "pa55word-x", "urlpass"):
        assert secret not in text
    assert first["level"] == "WARNING" and first["logger"] == "skyfleet.test.probe"
    assert first["message"] == "login with password=*** to http://u:***@keystone:5000/v3"
    assert second["body"] == '{"token": "***"}' and second["attempt"] == 3  # numbers stay numbers
    assert "RuntimeError: auth failed with ***" in third["exc"]


def test_context_ids_are_fields_of_each_line_and_are_reset_after_the_block(
        json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    with log_context.scope(operation_id="op-1", task_id="task-1", site_id="site-1"):
        probe_log.info("inside")
    probe_log.info("outside")
    inside, outside = json_lines()
    assert (inside["operation_id"], inside["task_id"], inside["site_id"]) == ("op-1", "task-1", "site-1")
    assert not {"operation_id", "task_id", "site_id"} & set(outside)


def test_auto_format_is_text_on_a_terminal_and_json_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format("auto", Tty()) == "text"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"


def test_a_line_written_inside_a_route_carries_the_request_id_and_the_principal_never_the_token(
        runtime_factory: Callable[..., Runtime], json_lines: Callable[[], list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(runtime_factory(None, None), start_workers=False)

    @app.get("/v1/log-probe")
    def _probe() -> dict[str, str]:
        probe_log.info("inside the route")
        return {}

    monkeypatch.setitem(access.POLICY, "GET /v1/log-probe", access.READ)
    app.dependency_overrides[get_principal] = lambda: TENANT
    with TestClient(app) as client:
        response = client.get("/v1/log-probe", headers={"X-Auth-Token": "gAAAAA-token-of-the-tenant"})
        again = client.get("/v1/log-probe")
    assert response.status_code == 200 and again.status_code == 200
    lines = [line for line in json_lines() if line["message"] == "inside the route"]
    assert [line["request_id"] for line in lines] == [response.headers["x-request-id"], again.headers["x-request-id"]]
    assert all((line["user_id"], line["project_id"]) == ("t", "p1") for line in lines)
    access_lines = [line for line in json_lines() if line["logger"] == "skyfleet.access"]
    assert access_lines and all(line["request_id"].startswith("req-") for line in access_lines)
    assert "gAAAAA-token-of-the-tenant" not in json.dumps(json_lines())


class _Empty(BaseModel):
    pass


def _observe(ctx: SiteContext, _payload: BaseModel) -> str:
    probe_log.info("observing %s", ctx.site_name)
    return "ok"


if "test.logged" not in REGISTRY:
    register(TaskKind(name="test.logged", description="logs one line", payload=_Empty, observe=_observe,
                      diff=lambda _p, _o: None, apply=lambda _c, _p, _plan: {}, summary=lambda o: {}))


def test_the_engine_puts_operation_task_and_site_ids_on_the_lines_of_the_task(
        runtime_factory: Callable[..., Runtime], json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    runtime = runtime_factory(None, None)
    box = SecretBox([Fernet.generate_key().decode()])
    with transaction(runtime.factory) as session:
        site = sites.create_site(session, box=box, data=SiteCreate.model_validate(site_body("edge-1")))
        site_id = site.id
        ref = operations.SiteRef(site.id, site.name)
    op = submit(runtime.factory, "test.logged", [ref])
    engine = Engine(runtime.factory, box=box, config=EngineConfig(), clock=fresh_clock())
    assert engine.run_until_idle() == 1
    line = next(line for line in json_lines() if line["message"] == "observing edge-1")
    assert line["operation_id"] == op and line["site_id"] == site_id and line["task_id"]
    assert "request_id" not in line


def test_a_health_audit_puts_each_sites_id_on_the_lines_of_its_probe(
        runtime_factory: Callable[..., Runtime], json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    from skyfleet.reconcile.health import run_audit
    from tests.support import FakeProber

    fake = FakeProber()

    def prober(auth: dict[str, Any]) -> Any:
        probe_log.info("probing %s", auth["auth_url"])
        return fake(auth)

    runtime = runtime_factory(None, None)
    box = SecretBox([Fernet.generate_key().decode()])
    with transaction(runtime.factory) as session:
        made = {name: sites.create_site(session, box=box, data=SiteCreate.model_validate(site_body(name)))
                for name in ("north", "south")}
        session.flush()
        ids = {name: site.id for name, site in made.items()}
    run_audit(runtime.factory, box=box, concurrency=2, timeout=1, offline_after=1, prober=prober)
    lines = {line["message"]: line for line in json_lines() if line["message"].startswith("probing")}
    for name, site_id in ids.items():
        assert lines[f"probing http://{name}.example.test:5000/v3"]["site_id"] == site_id
