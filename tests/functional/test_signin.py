"""POST /v1/auth/tokens with the simulator's Keystone as the home Keystone: a user name and password
give a project-scoped token that Skyfleet then accepts; bad credentials are 401 with the reason and
never echoed or logged; repeated failures from one address are 429 without reaching Keystone; without
a home Keystone (noauth) the route is 404.

The dashboard's session (/v1/auth/session): an HttpOnly, SameSite=Strict cookie and no token in the
answer; changes through the cookie need the session's CSRF token and this server's origin; X-Auth-Token
callers are untouched; sign-out, expiry and unknown ids are 401."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.api.sessions import SessionStore
from skyfleet.simulator import Simulator
from skyfleet.simulator.state import DEMO_PASSWORD
from tests.functional.conftest import site_auth

WRONG = "not-the-password-7c1e"


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], sim: Simulator) -> Iterator[TestClient]:
    auth = site_auth(sim, sim.site_names()[0])
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                         home_username=auth["username"], home_password=auth["password"],
                         home_project_name=auth["project_name"], signin_failure_burst=3,
                         signin_failure_rate=0.01)
    with TestClient(create_app(rt, start_workers=False)) as client:
        yield client


def issued_tokens(sim: Simulator) -> int:
    return sum(n for (method, path), n in sim.counters(sim.site_names()[0]).items()
               if method == "POST" and path.endswith("/v3/auth/tokens"))


def test_a_password_gives_a_token_skyfleet_accepts(api: TestClient, sim: Simulator) -> None:
    admin_password = site_auth(sim, sim.site_names()[0])["password"]
    signed = api.post("/v1/auth/tokens", json={"username": "admin", "password": admin_password,
                                               "project": "admin"})
    assert signed.status_code == 201, signed.text
    body = signed.json()
    assert body["project_name"] == "admin" and "admin" in body["roles"] and body["expires_at"]
    assert signed.headers["Cache-Control"] == "no-store"
    assert api.get("/v1/sites", headers={"X-Auth-Token": body["token"]}).status_code == 200

    tenant = api.post("/v1/auth/tokens", json={"username": "demo", "password": DEMO_PASSWORD, "project": "demo",
                                               "domain": "Default"})
    assert tenant.status_code == 201, tenant.text
    token = {"X-Auth-Token": tenant.json()["token"]}
    assert api.get("/v1/events", headers=token).status_code == 200
    assert api.get("/v1/sites", headers=token).status_code == 403  # a tenant's token, as any other


def test_bad_credentials_are_401_never_echoed_nor_logged(api: TestClient, sim: Simulator,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for body in ({"username": "demo", "password": WRONG, "project": "demo"},
                 {"username": "demo", "password": DEMO_PASSWORD, "project": "no-such-project"}):
        refused = api.post("/v1/auth/tokens", json=body)
        assert refused.status_code == 401, refused.text
        assert "refused these credentials" in refused.json()["detail"] and refused.json()["request_id"]
        assert WRONG not in refused.text
    invalid = api.post("/v1/auth/tokens", json={"username": "demo", "password": WRONG, "project": "demo",
                                                "extra": WRONG})
    assert invalid.status_code == 422 and WRONG not in invalid.text
    assert api.post("/v1/auth/tokens", json={"username": "demo"}).status_code == 422
    assert caplog.records and not any(WRONG in r.getMessage() or DEMO_PASSWORD in r.getMessage()
                                      for r in caplog.records)


def test_repeated_failures_from_one_address_are_429_without_asking_keystone(api: TestClient,
                                                                            sim: Simulator) -> None:
    wrong = {"username": "demo", "password": WRONG, "project": "demo"}
    assert [api.post("/v1/auth/tokens", json=wrong).status_code for _ in range(3)] == [401, 401, 401]
    before = issued_tokens(sim)
    limited = api.post("/v1/auth/tokens", json=wrong)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "failed sign-ins" in limited.json()["detail"]
    # even the right password waits: the address is limited, not the user
    right = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
    assert api.post("/v1/auth/tokens", json=right).status_code == 429
    assert issued_tokens(sim) == before, "a limited address must not reach Keystone"


def test_home_keystone_down_is_503(api: TestClient, sim: Simulator) -> None:
    sim.set_faults(sim.site_names()[0], down=True)
    try:
        down = api.post("/v1/auth/tokens", json={"username": "demo", "password": DEMO_PASSWORD, "project": "demo"})
    finally:
        sim.set_faults(sim.site_names()[0], down=False)
    assert down.status_code == 503 and "home Keystone" in down.json()["detail"], down.text


def test_noauth_has_no_sign_in(runtime_factory: Callable[..., Runtime]) -> None:
    with TestClient(create_app(runtime_factory(None, None), start_workers=False)) as client:
        answer = client.post("/v1/auth/tokens", json={"username": "u", "password": "p", "project": "p"})
    assert answer.status_code == 404 and "noauth" in answer.json()["detail"]


# --- the dashboard's session cookie (POST/GET/DELETE /v1/auth/session) ---------------------------------

DEMO = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl cookie"


def set_cookies(response: Response) -> dict[str, str]:
    """Set-Cookie headers of ``response`` by cookie name (the whole header, attributes included)."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def signed_in(api: TestClient) -> tuple[Response, str, str]:
    """A dashboard sign-in of the demo user: the answer, the session id and the CSRF token."""
    answer = api.post("/v1/auth/session", json=DEMO)
    assert answer.status_code == 201, answer.text
    return answer, api.cookies["skyfleet_session"], api.cookies["skyfleet_csrf"]


def keypair(name: str) -> dict[str, Any]:
    return {"spec": {"name": name, "public_key": KEY}}


def test_a_dashboard_sign_in_sets_an_httponly_cookie_and_never_shows_the_token(
        api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer, session_id, csrf = signed_in(api)
    cookies = set_cookies(answer)
    session = cookies["skyfleet_session"].lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session and "max-age=" in session
    assert "secure" not in session, "plain http in this test: a Secure cookie would never come back"
    assert "httponly" not in cookies["skyfleet_csrf"].lower() and "samesite=strict" in cookies["skyfleet_csrf"].lower()
    body = answer.json()
    assert set(body) == {"authenticated", "via", "reason", "user_name", "project_id", "project_name", "roles",
                         "expires_at", "csrf_token", "fleet_admin", "domain_admin", "domain_name"}, "no token field"
    assert body["via"] == "session" and body["user_name"] == "demo" and body["csrf_token"] == csrf
    assert answer.headers["Cache-Control"] == "no-store"
    # the Keystone token behind the session is nowhere in the answer: it is not a cookie value either
    token = api.app.state.sessions.get(session_id).token  # type: ignore[attr-defined]
    assert token not in answer.text and token not in str(answer.headers) and token not in (session_id, csrf)
    # the cookie reads like a token would; who am I says so
    assert api.get("/v1/events?limit=1").status_code == 200
    who = api.get("/v1/auth/session").json()
    assert who["authenticated"] and who["via"] == "session" and who["expires_at"] and who["csrf_token"] is None
    assert api.get("/v1/sites").status_code == 403, "the same access decision: a tenant is a tenant"
    assert any(r.name == "skyfleet.access" and "/v1/events" in r.getMessage() for r in caplog.records)
    for record in caplog.records:  # neither the session id, the CSRF token nor the token is logged
        text = record.getMessage()
        assert session_id not in text and csrf not in text and token not in text and DEMO_PASSWORD not in text


def test_changes_through_the_cookie_need_the_csrf_token(api: TestClient) -> None:
    _, _, csrf = signed_in(api)
    refused = api.post("/v1/keypairs", json=keypair("kp-no-csrf"))
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"], refused.text
    wrong = api.post("/v1/keypairs", json=keypair("kp-bad-csrf"), headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403 and "does not match" in wrong.json()["detail"]
    assert csrf not in refused.text and csrf not in wrong.text
    made = api.post("/v1/keypairs", json=keypair("kp-csrf"), headers={"X-CSRF-Token": csrf})
    assert made.status_code == 202, made.text
    for method in ("PATCH", "DELETE"):
        assert api.request(method, "/v1/keypairs/kp-csrf").status_code == 403, method
    assert api.get("/v1/keypairs/kp-csrf").status_code == 200, "reads need no CSRF token"
    assert api.delete("/v1/keypairs/kp-csrf", headers={"X-CSRF-Token": csrf}).status_code in (202, 204)


def test_a_page_of_another_origin_is_refused(api: TestClient) -> None:
    _, _, csrf = signed_in(api)
    csrf_header = {"X-CSRF-Token": csrf}
    for evil in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                 {"Referer": "https://evil.example/page"}, {"Origin": "http://testserver.evil.example"}):
        answer = api.post("/v1/keypairs", json=keypair("kp-evil"), headers={**csrf_header, **evil})
        assert answer.status_code == 403 and "another origin" in answer.json()["detail"], (evil, answer.text)
        assert api.get("/v1/events?limit=1", headers=evil).status_code == 403, evil
    api.cookies.clear()
    assert api.post("/v1/auth/session", json=DEMO, headers={"Origin": "https://evil.example"}).status_code == 403, \
        "no other site signs this browser in"
    signed_in(api)
    same = api.post("/v1/keypairs", json=keypair("kp-same-origin"),
                    headers={"Origin": "http://testserver", "X-CSRF-Token": api.cookies["skyfleet_csrf"]})
    assert same.status_code == 202, same.text


def test_x_auth_token_callers_need_no_csrf_token_and_ignore_the_cookie(api: TestClient) -> None:
    token = api.post("/v1/auth/tokens", json=DEMO).json()["token"]
    assert api.post("/v1/keypairs", json=keypair("kp-header"), headers={"X-Auth-Token": token}).status_code == 202
    signed_in(api)  # a cookie too: the header decides, without a CSRF token
    assert api.post("/v1/keypairs", json=keypair("kp-header-2"), headers={"X-Auth-Token": token,
                                                                          "Origin": "https://cli.example"}
                    ).status_code == 202
    assert api.get("/v1/auth/session", headers={"X-Auth-Token": token}).json()["via"] == "token"
    assert api.get("/v1/events?limit=1", headers={"X-Auth-Token": "garbage"}).status_code == 401, \
        "a bad header is not rescued by the cookie"


def test_sign_out_forgets_the_session_and_clears_the_cookies(api: TestClient) -> None:
    _, session_id, csrf = signed_in(api)
    assert api.delete("/v1/auth/session").status_code == 403, "signing out is a change: CSRF token needed"
    out = api.delete("/v1/auth/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    cleared = set_cookies(out)
    assert all('=""' in cleared[name] and "max-age=0" in cleared[name].lower()
               for name in ("skyfleet_session", "skyfleet_csrf")), cleared
    assert "skyfleet_session" not in api.cookies
    api.cookies.set("skyfleet_session", session_id)  # the old cookie, replayed
    replayed = api.get("/v1/events?limit=1")
    assert replayed.status_code == 401 and "session is unknown or has expired" in replayed.json()["detail"]
    assert session_id not in replayed.text
    assert api.get("/v1/auth/session").json() == {
        "authenticated": False, "via": None, "reason": "the dashboard session is unknown or has expired: sign in "
        "again", "user_name": None, "project_id": None, "project_name": None, "roles": [], "expires_at": None,
        "csrf_token": None, "fleet_admin": False, "domain_admin": False, "domain_name": None}


def test_an_expired_or_unknown_session_is_401(api: TestClient) -> None:
    _, session_id, _ = signed_in(api)
    store = api.app.state.sessions  # type: ignore[attr-defined]
    session = store.get(session_id)
    store._sessions[next(iter(store._sessions))] = replace(session, expires=time.time() - 1)
    expired = api.get("/v1/events?limit=1")
    assert expired.status_code == 401 and "sign in again" in expired.json()["detail"]
    assert len(store) == 0, "an expired session is forgotten"
    api.cookies.set("skyfleet_session", "made-up-" + "x" * 40)
    assert api.get("/v1/events?limit=1").status_code == 401
    api.cookies.set("skyfleet_session", "y" * 5000)
    assert api.get("/v1/events?limit=1").status_code == 401


def test_a_pasted_token_is_exchanged_for_a_session(api: TestClient, sim: Simulator) -> None:
    token = api.post("/v1/auth/tokens", json=DEMO).json()["token"]
    answer = api.post("/v1/auth/session", headers={"X-Auth-Token": token})
    assert answer.status_code == 201 and token not in answer.text and answer.json()["project_name"] == "demo"
    assert api.get("/v1/events?limit=1").status_code == 200
    api.cookies.clear()
    refused = api.post("/v1/auth/session", headers={"X-Auth-Token": "gAAAA-not-a-token"})
    assert refused.status_code == 401 and "skyfleet_session" not in refused.headers.get("set-cookie", "")
    assert api.post("/v1/auth/session").status_code == 400, "neither credentials nor a token"
    unscoped = api.post("/v1/auth/session", headers={"X-Auth-Token": unscoped_token(api, sim)})
    assert unscoped.status_code == 403 and "not scoped to a project" in unscoped.json()["detail"], unscoped.text
    assert "skyfleet_session" not in unscoped.headers.get("set-cookie", "")


def unscoped_token(api: TestClient, sim: Simulator) -> str:
    """A token of a user with no project and no role: it reaches no level of access."""
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    sim.fleet.get(sim.site_names()[0]).keystone.add_user(name, "nobody-pass", None)
    home = api.app.state.runtime.settings.home_auth_url  # type: ignore[attr-defined]
    token: str = ks_session.Session(auth=v3.Password(auth_url=home, username=name, password="nobody-pass",
                                                     user_domain_name="Default")).get_token()
    return token


def test_the_session_store_is_bounded_and_expires() -> None:
    now = [1000.0]
    store = SessionStore(max_sessions=2, max_seconds=60, clock=lambda: now[0])
    first, _ = store.create("t1", expires=5000)
    second, kept = store.create("t2", expires=1030)
    assert kept.expires == 1030 and store.get(first) is not None
    third, capped = store.create("t3", expires=float("inf"))
    assert capped.expires == 1060, "no session outlives session_max_seconds"
    assert store.get(first) is None and len(store) == 2, "the oldest sign-in made room"
    now[0] = 1031
    assert store.get(second) is None and store.get(third) is not None
    assert store.forget(third) and not store.forget(third) and len(store) == 0


def test_the_live_event_stream_takes_the_cookie_and_no_token_in_its_url(api: TestClient) -> None:
    """EventSource sends no header of the page's choosing: the cookie is what authenticates it, and a
    token in the query string is not read (it would land in logs and history)."""
    token = api.post("/v1/auth/tokens", json=DEMO).json()["token"]
    for query in (f"token={token}", f"X-Auth-Token={token}", f"auth_token={token}"):
        assert api.get(f"/v1/events/stream?timeout=0.2&{query}").status_code == 401, query
    signed_in(api)
    with api.stream("GET", "/v1/events/stream?timeout=0.2", headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert "skyfleet event stream" in "".join(stream.iter_text())


def test_cookies_are_secure_over_https_or_when_the_setting_says_so(
        runtime_factory: Callable[..., Runtime], sim: Simulator) -> None:
    auth = site_auth(sim, sim.site_names()[0])
    for secure_setting, base_url, secure in ((False, "https://testserver", True), (True, "http://testserver", True),
                                              (False, "http://testserver", False)):
        rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                             home_username=auth["username"], home_password=auth["password"],
                             home_project_name=auth["project_name"], session_cookie_secure=secure_setting)
        with TestClient(create_app(rt, start_workers=False), base_url=base_url) as client:
            answer = client.post("/v1/auth/session", json=DEMO)
            assert answer.status_code == 201, answer.text
            cookies = set_cookies(answer)
            for name in ("skyfleet_session", "skyfleet_csrf"):
                assert ("; secure" in cookies[name].lower()) is secure, (base_url, secure_setting, cookies[name])
            if secure_setting:  # behind a TLS proxy: the page's origin is https://<Host>
                session_id = client.cookies["skyfleet_session"]
                client.cookies.clear()
                assert client.get("/v1/events?limit=1", headers={"Origin": "https://testserver",
                                                                 "Cookie": f"skyfleet_session={session_id}"}
                                  ).status_code == 200
