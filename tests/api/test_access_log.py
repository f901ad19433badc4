"""One access log line per request, with the request id the response shows and no secret."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from skyfleet.api.access_log import AccessLog, query_keys, request_id_of
from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime

TOKEN = "gAAAAABtoken-value-5150"


@pytest.fixture
def app_client(runtime_factory: Callable[..., Runtime]) -> Iterator[TestClient]:
    runtime = runtime_factory(None, None)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield client


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "skyfleet.access"]


def test_a_200_and_a_404_each_get_one_line_with_the_echoed_request_id(
        app_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skyfleet.access")
    ok = app_client.get("/v1/sites?limit=5&name=secret-filter", headers={"X-Auth-Token": TOKEN})
    missing = app_client.get("/v1/sites/nowhere", headers={"X-Auth-Token": TOKEN})
    assert (ok.status_code, missing.status_code) == (200, 404)
    lines = access_lines(caplog)
    assert len(lines) == 2
    for record, response, status in ((lines[0], ok, 200), (lines[1], missing, 404)):
        text = record.getMessage()
        request_id = response.headers["x-request-id"]
        assert response.headers["x-openstack-request-id"] == request_id and request_id.startswith("req-")
        assert request_id in text and f" {status} " in text
        assert record.request_id == request_id and record.http_status == status  # type: ignore[attr-defined]
        assert TOKEN not in text and "secret-filter" not in text
    assert "GET /v1/sites?limit,name 200" in lines[0].getMessage()
    assert "GET /v1/sites/nowhere 404" in lines[1].getMessage()


def test_a_well_formed_incoming_request_id_is_kept(app_client: TestClient,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skyfleet.access")
    given = f"req-{uuid.uuid4()}"
    response = app_client.get("/healthz", headers={"X-OpenStack-Request-Id": given})
    assert response.headers["x-request-id"] == given == response.headers["x-openstack-request-id"]
    assert given in access_lines(caplog)[0].getMessage()


@pytest.mark.parametrize("given", ["not-a-uuid", "req-1234", "req-" + "0" * 36, "x\r\nInjected: 1",
                                   f"{uuid.uuid4()}-tail"])
def test_malformed_incoming_request_ids_are_replaced(given: str) -> None:
    made = request_id_of([(b"x-request-id", given.encode("latin-1"))])
    assert made != given and made.startswith("req-") and uuid.UUID(made[4:])


def test_a_bare_uuid_becomes_a_req_id() -> None:
    value = str(uuid.uuid4())
    assert request_id_of([(b"X-Request-Id", value.encode())]) == f"req-{value}"


def test_query_keys_drop_values() -> None:
    assert query_keys(b"token=abc&limit=5&limit=6&x%0Ay=1") == "limit,token,x?y"


def test_principal_from_request_state_and_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skyfleet.access")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["principal"] = SimpleNamespace(user_id="u-42", project_id="p-7")
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-request-id", b"spoofed")]})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    def scope(path: str) -> Scope:
        return {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": []}

    asyncio.run(AccessLog(app)(scope("/v1/x"), receive, send))
    with pytest.raises(RuntimeError):
        asyncio.run(AccessLog(app)(scope("/boom"), receive, send))
    ok, boom = (r.getMessage() for r in access_lines(caplog))
    assert "POST /v1/x 201 user=u-42 project=p-7" in ok and "POST /boom 500 user=u-42" in boom
    ids = [v for k, v in sent[0]["headers"] if k == b"x-request-id"]
    assert len(ids) == 1 and ids[0] != b"spoofed"


class _Validator:
    def validate(self, token: str) -> Principal:
        return Principal(user_id="u-77", user_name="alice", project_id="p-88", project_name="admin",
                         roles=("admin",), is_admin=True)


def test_the_access_decisions_principal_is_logged_not_its_token(runtime_factory: Callable[..., Runtime],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skyfleet.access")
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url="http://127.0.0.1:9/v3",
                         home_username="svc", home_password="svc-pass-1234")
    rt.validator = _Validator()  # type: ignore[assignment]
    with TestClient(create_app(rt, start_workers=False)) as client:
        assert client.get("/v1/sites", headers={"X-Auth-Token": TOKEN}).status_code == 200
    (line,) = (r.getMessage() for r in access_lines(caplog))
    assert "GET /v1/sites 200 user=u-77 project=p-88" in line and TOKEN not in line
