"""The CLI puts a name the user typed into the URL as one path segment: ``bob#tmp`` must not reach the
API as ``bob`` (a fragment), nor ``alice?domain=B`` as ``alice`` of domain B (a query), or a ``delete``
removes another resource than the one named."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from skyfleet.cli import context
from skyfleet.cli.client import ApiClient, seg
from skyfleet.cli.main import app

runner = CliRunner()


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(404, json={"code": 404, "title": "Not Found", "detail": "nothing here"})

    def fake(url: str | None, token: str | None, **_: Any) -> ApiClient:
        client = ApiClient("http://skyfleet.test", token)
        client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(handler))
        return client

    monkeypatch.setattr(context, "ApiClient", fake)
    return requests


@pytest.mark.parametrize(("args", "path"), [
    (["user", "delete", "bob#tmp"], "/v1/identity/users/bob%23tmp"),
    (["user", "show", "alice?domain=B"], "/v1/identity/users/alice%3Fdomain%3DB"),
    (["project", "delete", ".."], "/v1/identity/projects/%2E%2E"),
    (["keypair", "delete", "k?purge=true"], "/v1/keypairs/k%3Fpurge%3Dtrue"),
    (["routing-domain", "rotate-key", "vpn/x"], "/v1/routing-domains/vpn%2Fx/vpn/rotate-key"),
    (["network", "show", "a b"], "/v1/networks/a%20b"),
])
def test_a_typed_name_is_one_path_segment(seen: list[httpx.Request], args: list[str], path: str) -> None:
    result = runner.invoke(app, ["--token", "t", *args])
    assert result.exit_code == 1 and "nothing here" in result.output, result.output
    assert [r.url.raw_path.decode().split("?")[0] for r in seen] == [path]
    assert b"domain=B" not in seen[0].url.query and b"purge=true" not in seen[0].url.query


def test_seg_leaves_plain_names_alone() -> None:
    assert seg("web-01_a.b~c") == "web-01_a.b~c"
    assert seg("Dom Ü") == "Dom%20%C3%9C"
