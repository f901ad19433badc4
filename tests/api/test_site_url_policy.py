"""Site URL policy: auth URLs outside site_url_allow / inside site_url_deny are refused with the rule,
and a site's last_error keeps only a short, sanitized reason (never the remote's body)."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import exceptions as ks_exc

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.domains.sites import url_policy
from skyfleet.domains.sites.service import short_reason
from skyfleet.drivers.openstack.probe import describe_error, probe_site
from tests.support import FakeProber, site_body

FAKE_DNS = {"metadata.example.test": ["169.254.169.254"], "ok.example.test": ["192.0.2.10"],
            "split.example.test": ["192.0.2.11", "198.51.100.7"]}


@pytest.fixture(autouse=True)
def _fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str) -> list[url_policy.Address]:
        return [ipaddress.ip_address(a) for a in FAKE_DNS.get(host, [])]

    monkeypatch.setattr(url_policy, "resolve", resolve)


@pytest.fixture
def app_with(runtime_factory: Callable[..., Runtime], prober: FakeProber) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(**settings: Any) -> TestClient:
        client = TestClient(create_app(runtime_factory(None, prober, **settings), start_workers=False))
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def post(client: TestClient, name: str, url: str) -> Any:
    return client.post("/v1/sites", json=site_body(name, url=url))


@pytest.mark.parametrize("url", ["http://169.254.169.254/v3", "http://[fe80::1]:5000/v3",
                                 "http://metadata.example.test:5000/v3", "http://2852039166/v3"])
def test_default_policy_refuses_link_local_and_metadata(app_with: Callable[..., TestClient], url: str) -> None:
    response = post(app_with(), "meta", url)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400 and "deny rule" in body["detail"] and "SKYFLEET_SITE_URL_DENY" in body["detail"]
    assert "169.254.0.0/16" in body["detail"] or "fe80::/10" in body["detail"]


def test_default_policy_admits_ordinary_sites(app_with: Callable[..., TestClient]) -> None:
    assert post(app_with(), "ok", "http://ok.example.test:5000/v3").status_code == 201
    assert post(app_with(), "ip", "https://192.0.2.20:5000/v3").status_code == 201


def test_allow_list_of_patterns_and_cidrs(app_with: Callable[..., TestClient]) -> None:
    client = app_with(site_url_allow="*.example.test,203.0.113.0/24")
    assert post(client, "a", "http://ok.example.test:5000/v3").status_code == 201
    assert post(client, "b", "http://203.0.113.9:5000/v3").status_code == 201
    refused = post(client, "c", "http://keystone.example.org:5000/v3")
    assert refused.status_code == 400 and "no allow rule" in refused.json()["detail"]
    assert "*.example.test" in refused.json()["detail"]


def test_every_resolved_address_must_be_inside_an_allowed_cidr(app_with: Callable[..., TestClient]) -> None:
    client = app_with(site_url_allow="192.0.2.0/24")
    assert post(client, "one", "http://ok.example.test/v3").status_code == 201
    assert post(client, "two", "http://split.example.test/v3").status_code == 400
    assert post(client, "dark", "http://unresolvable.example.test/v3").status_code == 400


def test_deny_pattern_wins_over_allow(app_with: Callable[..., TestClient]) -> None:
    client = app_with(site_url_allow="*.example.test", site_url_deny="ok.example.test")
    refused = post(client, "ok", "http://ok.example.test/v3")
    assert refused.status_code == 400 and "'ok.example.test'" in refused.json()["detail"]


def test_patch_with_a_denied_auth_url_is_refused_and_nothing_changes(app_with: Callable[..., TestClient]) -> None:
    client = app_with()
    assert post(client, "lyon", "http://ok.example.test:5000/v3").status_code == 201
    auth = site_body("lyon", url="http://169.254.169.254/v3")["auth"]
    response = client.patch("/v1/sites/lyon", json={"auth": auth})
    assert response.status_code == 400 and "169.254.0.0/16" in response.json()["detail"]
    assert client.get("/v1/sites/lyon").json()["auth"]["auth_url"] == "http://ok.example.test:5000/v3"


def test_bad_rules_are_refused_at_start(runtime_factory: Callable[..., Runtime]) -> None:
    with pytest.raises(ValueError, match="site_url_deny"):
        runtime_factory(None, None, site_url_deny="10.0.0.0/33")
    with pytest.raises(ValueError, match="site_url_allow"):
        runtime_factory(None, None, site_url_allow="http://x y")


def test_describe_error_keeps_status_and_class_never_the_body() -> None:
    exc = ks_exc.InternalServerError(message="<html>db password=hunter2 at 10.1.2.3</html>", http_status=500)
    assert describe_error(exc) == "HTTP 500 (InternalServerError)"
    assert describe_error(ValueError("remote said: secret stuff")) == "ValueError"


def test_short_reason_drops_control_characters_and_truncates() -> None:
    text = "compute: HTTP 503\r\n(ServiceUnavailable)\x1b[31m" + "x" * 1000
    reason = short_reason(text) or ""
    assert len(reason) <= 300 and "\n" not in reason and "\x1b" not in reason


class _Chatty(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b'{"error": {"message": "internal-detail-4711 at 10.9.8.7", "code": 500}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


def test_a_site_answering_errors_leaves_no_body_in_last_error() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Chatty)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v3"
        result = probe_site({"auth_url": url, "username": "u", "password": "p", "project_name": "p",
                             "user_domain_name": "Default", "project_domain_name": "Default"}, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert not result.reachable and result.error is not None
    assert "internal-detail-4711" not in result.error and "10.9.8.7" not in result.error
    assert "500" in result.error
