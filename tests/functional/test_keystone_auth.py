"""Keystone mode against a simulated home Keystone: real tokens, roles, cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.functional.conftest import site_auth, token_for


@pytest.fixture
def home(sim: Simulator) -> str:
    return sim.site_names()[0]


@pytest.fixture
def keystone_rt(runtime_factory: Callable[..., Runtime], sim: Simulator, home: str) -> Runtime:
    auth = site_auth(sim, home)
    return runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                           home_username=auth["username"], home_password=auth["password"],
                           home_project_name=auth["project_name"], token_cache_seconds=30)


@pytest.fixture
def api(keystone_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(keystone_rt, start_workers=False)) as client:
        yield client


def validations(sim: Simulator, site: str) -> int:
    return sum(n for (method, path), n in sim.counters(site).items()
               if method == "GET" and path.endswith("/v3/auth/tokens"))


def test_admin_token_manages_sites_member_token_is_refused(api: TestClient, sim: Simulator, home: str) -> None:
    admin: dict[str, Any] = {"X-Auth-Token": token_for(sim, home, "admin")}
    member = {"X-Auth-Token": token_for(sim, home, "demo")}
    created = api.post("/v1/sites", json={"name": "s1", "auth": site_auth(sim, sim.site_names()[1])},
                       headers=admin)
    assert created.status_code == 201, created.text
    assert api.get("/v1/sites", headers=admin).json()["sites"][0]["name"] == "s1"
    refused = api.get("/v1/sites", headers=member)
    assert refused.status_code == 403
    assert "member" in refused.json()["detail"] and "demo" in refused.json()["detail"]
    assert api.get("/v1/events", headers=member).status_code == 200


def test_invalid_token_is_401_and_validations_are_cached(api: TestClient, sim: Simulator, home: str) -> None:
    assert api.get("/v1/sites", headers={"X-Auth-Token": "gAAAA-not-a-token"}).status_code == 401
    token = {"X-Auth-Token": token_for(sim, home, "admin")}
    before = validations(sim, home)
    for _ in range(5):
        assert api.get("/v1/sites", headers=token).status_code == 200
    assert validations(sim, home) - before == 1


def test_home_keystone_down_gives_503(api: TestClient, sim: Simulator, home: str) -> None:
    token = {"X-Auth-Token": token_for(sim, home, "admin") + "x"}  # not cached
    sim.set_faults(home, down=True)
    response = api.get("/v1/sites", headers=token)
    assert response.status_code == 503
    assert "home Keystone" in response.json()["detail"]
