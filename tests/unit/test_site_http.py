"""The sync calls' aiohttp path (``drivers.openstack.site_http`` through ``syncapi._call``) against a
local aiohttp server: what keystoneauth did and must still happen (microversion headers, JSON body,
query string and path quoting, 401 -> a new token and one retry, timeouts and statuses mapped to
site errors, no body nor token in the logs, the proxy of the environment)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from skyfleet.drivers.openstack import site_http, syncapi
from skyfleet.errors import PermanentSiteError, TemporarySiteError

SECRET = "pw-never-logged"


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse_token: set[str] = field(default_factory=set)  # tokens answered 401
    sleep: float = 0.0


class RotatingToken(token_endpoint.Token):  # type: ignore[misc]
    """A fixed endpoint whose token changes on each invalidate (keystoneauth's Password does the same)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint, "token-1")
        self.rounds = 1

    def invalidate(self) -> bool:
        self.rounds += 1
        self.token = f"token-{self.rounds}"
        return True


@pytest.fixture()
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.requests.append({"method": request.method, "path": request.raw_path, "headers": dict(request.headers),
                              "body": raw})
        if seen.sleep:
            await asyncio.sleep(seen.sleep)
        if request.headers.get("X-Auth-Token") in seen.refuse_token:
            return web.json_response({"error": "expired"}, status=401)
        status = int(request.query.get("status", "200"))
        if status >= 400:
            return web.Response(status=status, text="the site's own words")
        return web.json_response({"keypair": {"name": "k", "echo": raw.decode() or None}}, status=status)

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/compute/v2.1", seen
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def connection(endpoint: str, *, timeout: float = 5.0) -> Any:
    session = ks_session.Session(auth=RotatingToken(endpoint), timeout=timeout)
    return SimpleNamespace(session=session, config=SimpleNamespace(interface="public", region_name=None))


def test_microversion_headers_body_query_and_path(server: tuple[str, Seen]) -> None:
    endpoint, seen = server
    conn = connection(endpoint)
    made = syncapi.create_keypair(conn, name="k", public_key="ssh-ed25519 AAAA", user_id="u1")
    assert made["name"] == "k"
    sent = seen.requests[-1]
    assert sent["method"] == "POST" and sent["path"] == "/compute/v2.1/os-keypairs"
    assert sent["headers"]["OpenStack-API-Version"] == "compute 2.10"
    assert sent["headers"]["X-OpenStack-Nova-API-Version"] == "2.10"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["X-Auth-Token"] == "token-1"
    assert b'"user_id": "u1"' in sent["body"]
    syncapi.get_keypair(conn, "a b", user_id="u 2")
    assert seen.requests[-1]["path"] == "/compute/v2.1/os-keypairs/a%20b?user_id=u+2"
    assert seen.requests[-1]["body"] == b""
    assert "Content-Type" not in seen.requests[-1]["headers"]


def test_cinder_is_named_volume_in_the_microversion_header(server: tuple[str, Seen]) -> None:
    """As keystoneauth names it: Cinder reads ``OpenStack-API-Version: volume 3.60`` (a header naming
    another service is ignored, and Cinder then answers at 3.0: the volume change feed's filter unread)."""
    endpoint, seen = server
    conn = connection(endpoint)
    conn.block_storage = ks_adapter.Adapter(session=conn.session, service_type="block-storage")
    status, _ = site_http.request(conn, "block_storage", "GET", "/volumes/detail", params={"updated_at": "gte:x"},
                                  microversion="3.60")
    assert status == 200
    sent = seen.requests[-1]
    assert sent["headers"]["OpenStack-API-Version"] == "volume 3.60"
    assert "X-OpenStack-Nova-API-Version" not in sent["headers"]
    assert sent["path"] == "/compute/v2.1/volumes/detail?updated_at=gte%3Ax"


def test_no_microversion_header_without_one(server: tuple[str, Seen]) -> None:
    endpoint, seen = server
    syncapi.delete_flavor(connection(endpoint), "f1")
    assert "OpenStack-API-Version" not in seen.requests[-1]["headers"]
    assert "X-OpenStack-Nova-API-Version" not in seen.requests[-1]["headers"]


def test_a_401_invalidates_the_token_and_retries_once(server: tuple[str, Seen]) -> None:
    endpoint, seen = server
    conn = connection(endpoint)
    seen.refuse_token = {"token-1"}
    assert syncapi.get_keypair(conn, "k", user_id=None) is not None
    assert [r["headers"]["X-Auth-Token"] for r in seen.requests] == ["token-1", "token-2"]
    seen.refuse_token = {"token-2", "token-3"}
    with pytest.raises(TemporarySiteError) as err:  # refused again: one retry only, then "retry later"
        syncapi.get_keypair(conn, "k", user_id=None)
    assert err.value.status == 401 and len(seen.requests) == 4


def test_statuses_and_timeouts_become_site_errors(server: tuple[str, Seen]) -> None:
    endpoint, seen = server
    conn = connection(endpoint, timeout=0.3)
    with pytest.raises(TemporarySiteError) as temporary:
        syncapi._call(conn, "compute", "GET", "/x", params={"status": 503})
    assert temporary.value.status == 503 and "the site's own words" in str(temporary.value)
    with pytest.raises(PermanentSiteError) as permanent:
        syncapi._call(conn, "compute", "GET", "/x", params={"status": 400})
    assert permanent.value.status == 400
    assert syncapi._call(conn, "compute", "GET", "/x", params={"status": 404}, missing_ok=True) is None
    seen.sleep = 2.0
    with pytest.raises(TemporarySiteError, match="timed out"):
        syncapi._call(conn, "compute", "GET", "/slow")


def test_unreachable_site_is_temporary() -> None:
    with pytest.raises(TemporarySiteError, match="cannot connect"):
        syncapi._call(connection("http://127.0.0.1:9/compute/v2.1", timeout=2), "compute", "GET", "/x")


def test_bodies_and_tokens_never_logged(server: tuple[str, Seen], caplog: pytest.LogCaptureFixture) -> None:
    endpoint, _ = server
    conn = connection(endpoint)
    caplog.set_level(logging.DEBUG)
    syncapi._call(conn, "compute", "POST", "/users", body={"password": SECRET})
    syncapi._call(conn, "compute", "POST", "/users", body={"password": SECRET}, log=False)
    assert SECRET not in caplog.text and "token-1" not in caplog.text
    assert sum("POST" in r.getMessage() for r in caplog.records if r.name == site_http.__name__) == 1


def test_the_proxy_of_the_environment_as_requests_picks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "inside.example")
    state = site_http._Shared()
    assert site_http._proxy(state, "https://cloud.example:8774/v2.1/x") == "http://proxy.example:3128"
    assert site_http._proxy(state, "https://inside.example:8774/v2.1/x") is None
    assert site_http._proxy(state, "http://cloud.example:8774/v2.1/x") is None  # no http proxy set


def test_a_full_url_is_sent_as_it_is(server: tuple[str, Seen]) -> None:
    """As keystoneauth does: the identity calls pass the whole URL, which must not get the endpoint again."""
    endpoint, seen = server
    conn = connection(endpoint)
    origin = endpoint.rsplit("/compute/v2.1", 1)[0]
    syncapi._call(conn, "identity", "GET", f"{origin}/identity/v3/roles", params={"name": "member"})
    assert seen.requests[-1]["path"] == "/identity/v3/roles?name=member"
