"""POST /v1/auth/tokens with the simulator's Keystone as the home Keystone: a user name and password
give a project-scoped token that Skyfleet then accepts; bad credentials are 401 with the reason and
never echoed or logged; repeated failures from one address are 429 without reaching Keystone; without
a home Keystone (noauth) the route is 404."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
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
