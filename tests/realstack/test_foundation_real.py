"""Skyfleet's registry, health audit and Keystone auth against real OpenStack sites.

Run by testbed/realstack/contract.sh (marker ``realstack``) once the real sites are up; the clouds
come from ``OS_CLIENT_CONFIG_FILE`` (default /opt/realstack/clouds.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime

pytestmark = pytest.mark.realstack


def auth_of(cloud: dict[str, Any]) -> dict[str, Any]:
    auth = dict(cloud["auth"])
    auth.update(region_name=cloud.get("region_name"), interface=cloud.get("interface", "public"))
    return auth


@pytest.fixture
def admin_api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any]) -> Iterator[tuple[TestClient, Runtime]]:
    home = auth_of(clouds["site1"])
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                         home_username=home["username"], home_password=home["password"],
                         home_project_name=home["project_name"], site_timeout=15)
    token = ks_session.Session(auth=v3.Password(**{k: home[k] for k in (
        "auth_url", "username", "password", "project_name", "user_domain_name", "project_domain_name")})).get_token()
    with TestClient(create_app(rt, start_workers=False), headers={"X-Auth-Token": token}) as client:
        yield client, rt


def test_register_real_sites_and_audit(admin_api: tuple[TestClient, Runtime], clouds: dict[str, Any]) -> None:
    api, rt = admin_api
    for name in ("site1", "site2"):
        response = api.post("/v1/sites", json={"name": name, "auth": auth_of(clouds[name])})
        assert response.status_code == 201, response.text
        site = response.json()
        assert site["availability"] == "online", site["last_error"]
        services = {s["type"]: s for s in site["capabilities"]["services"]}
        assert {"identity", "compute", "image", "network", "block-storage", "placement"} <= set(services)
        assert services["compute"]["max_microversion"].startswith("2.")
        assert services["block-storage"]["max_microversion"].startswith("3.")
        assert "nova" in site["capabilities"]["availability_zones"]
        assert "admin" not in str(site["auth"].get("password", ""))
    report: Any = rt.audit_now()
    assert report.reachable == 2 and report.unreachable == 0


def test_unreachable_real_endpoint_goes_offline(admin_api: tuple[TestClient, Runtime], clouds: dict[str, Any]) -> None:
    api, rt = admin_api
    auth = auth_of(clouds["site1"]) | {"auth_url": "http://127.0.0.1:1/v3"}
    assert api.post("/v1/sites", json={"name": "ghost", "auth": auth}).json()["availability"] == "unknown"
    rt.audit_now()
    rt.audit_now()
    assert api.get("/v1/sites/ghost").json()["availability"] == "offline"


def test_wrong_password_is_reported(admin_api: tuple[TestClient, Runtime], clouds: dict[str, Any]) -> None:
    api, _ = admin_api
    auth = auth_of(clouds["site2"]) | {"password": "wrong-password-x"}
    site = api.post("/v1/sites", json={"name": "badpass", "auth": auth}).json()
    assert site["availability"] == "unknown" and "401" in site["last_error"]
    assert "wrong-password-x" not in str(site)


def test_real_tokens_map_to_admin_and_tenant(admin_api: tuple[TestClient, Runtime], clouds: dict[str, Any]) -> None:
    api, _ = admin_api
    assert api.get("/v1/sites").status_code == 200
    assert api.get("/v1/sites", headers={"X-Auth-Token": "not-a-real-token"}).status_code == 401


def test_real_sites_get_cheap_audit_cycles_between_full_probes(admin_api: tuple[TestClient, Runtime],
                                                              clouds: dict[str, Any]) -> None:
    """On real sites (site3: a second region on site1's Keystone): registration probed each site fully, so
    the first audit of the process logs in and makes the cheap call; the next ones check each online site
    with one call on the kept token, and every Nth is full."""
    api, rt = admin_api
    rt.audit_memory.full_every, rt.audit_memory.stagger = 3, False
    regions = {"site1": "RegionOne", "site2": "RegionOne", "site3": "RegionTwo"}
    for name, region in regions.items():
        auth = auth_of(clouds[name]) | {"region_name": region}
        response = api.post("/v1/sites", json={"name": name, "auth": auth})
        assert response.status_code == 201 and response.json()["availability"] == "online", response.text
    kinds: list[int] = []
    for _ in range(4):
        report: Any = rt.audit_now()
        assert report.reachable == 3 and not report.transitions, report
        kinds.append(report.cheap)
    assert kinds == [3, 3, 0, 3]  # login and cheap (recorded at registration), cheap, full (the Nth), cheap
    for name in regions:
        site = api.get(f"/v1/sites/{name}").json()
        assert site["availability"] == "online" and "nova" in site["capabilities"]["availability_zones"], site
