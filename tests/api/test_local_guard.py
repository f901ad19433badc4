"""noauth mode answers only this machine: non-loopback Host (DNS rebinding) and foreign Origin
(cross-site form posts) are refused with the usual error body."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.local_guard import host_is_local, origin_is_local
from skyfleet.api.runtime import Runtime
from tests.support import site_body


@pytest.fixture
def local(runtime_factory: Callable[..., Runtime]) -> Iterator[TestClient]:
    """A noauth app with no extra local names, called as a browser on this machine would."""
    app = create_app(runtime_factory(None, None, noauth_allowed_hosts=""), start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8080", "127.1.2.3:80", "localhost", "LOCALHOST:8080",
                                  "localhost.", "[::1]", "[::1]:8080"])
def test_loopback_hosts_are_served(local: TestClient, host: str) -> None:
    response = local.get("/v1/sites", headers={"Host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "10.0.0.5:8080", "0.0.0.0:8080",
                                  "localhost.evil.example", "127.0.0.1.nip.io", "[::2]:8080", "::1",
                                  "localhost:80:80", "testserver"])
def test_other_hosts_get_421_with_the_error_body(local: TestClient, host: str) -> None:
    response = local.post("/v1/sites", json=site_body("rebound"), headers={"Host": host})
    assert response.status_code == 421
    body = response.json()
    assert body["code"] == 421 and body["title"] == "Misdirected Request" and "noauth" in body["detail"]
    assert local.get("/v1/sites").json()["sites"] == []


@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example:8080", "null",
                                    "http://localhost.evil.example", "file://", "http://10.0.0.5"])
def test_foreign_origins_get_403(local: TestClient, origin: str) -> None:
    response = local.post("/v1/sites", json=site_body("csrf"), headers={"Origin": origin})
    assert response.status_code == 403
    assert response.json()["code"] == 403 and "origin" in response.json()["detail"]
    assert local.get("/v1/sites").json()["sites"] == []


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8080", "http://localhost:3000", "https://[::1]"])
def test_local_origins_are_served(local: TestClient, origin: str) -> None:
    assert local.get("/v1/sites", headers={"Origin": origin}).status_code == 200


def test_extra_local_names_come_from_the_setting(runtime_factory: Callable[..., Runtime]) -> None:
    app = create_app(runtime_factory(None, None, noauth_allowed_hosts="skyfleet.local"), start_workers=False)
    with TestClient(app, base_url="http://skyfleet.local:8080") as client:
        assert client.get("/v1/sites").status_code == 200
        assert client.get("/v1/sites", headers={"Origin": "http://skyfleet.local:8080"}).status_code == 200
        assert client.get("/v1/sites", headers={"Host": "evil.example"}).status_code == 421


def test_keystone_mode_is_not_guarded(runtime_factory: Callable[..., Runtime]) -> None:
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url="http://127.0.0.1:9/v3",
                         home_username="svc", home_password="svc-pass-1234")
    with TestClient(create_app(rt, start_workers=False), base_url="http://skyfleet.example.net") as client:
        assert client.get("/", headers={"Origin": "https://dashboard.example.net"}).status_code == 200


def test_header_parsers() -> None:
    assert host_is_local("127.0.0.1:1") and not host_is_local("") and not host_is_local("[::1]x")
    assert not origin_is_local("http://127.0.0.1:notaport") and not origin_is_local("ftp://127.0.0.1")


def test_refusals_carry_a_request_id_and_are_access_logged(local: TestClient,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skyfleet.access")
    response = local.get("/v1/sites", headers={"Host": "evil.example"})
    assert response.status_code == 421
    request_id = response.headers["x-request-id"]
    assert any("GET /v1/sites 421" in r.getMessage() and request_id in r.getMessage()
               for r in caplog.records if r.name == "skyfleet.access")
