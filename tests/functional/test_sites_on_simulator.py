"""Registration and health audits against simulated OpenStack sites over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.functional.conftest import site_auth


@pytest.fixture
def rt(runtime_factory: Callable[..., Runtime], db_url: str) -> Runtime:
    return runtime_factory(db_url, None, site_timeout=2.0)


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, start_workers=False)) as client:
        yield client


def register(api: TestClient, sim: Simulator, name: str) -> dict:  # type: ignore[type-arg]
    response = api.post("/v1/sites", json={"name": name, "auth": site_auth(sim, name)})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_registration_reads_catalog_versions_and_zones(api: TestClient, sim: Simulator) -> None:
    site = register(api, sim, sim.site_names()[0])
    assert site["availability"] == "online", site["last_error"]
    services = {s["type"]: s for s in site["capabilities"]["services"]}
    assert {"identity", "compute", "image", "network", "block-storage"} <= set(services)
    assert all(s["status"] == "ok" for s in services.values())
    assert services["compute"]["max_microversion"].startswith("2.")
    assert services["block-storage"]["max_microversion"].startswith("3.")
    assert site["capabilities"]["availability_zones"]
    assert site["latency_ms"] > 0


def test_unreachable_site_is_stored_unknown(api: TestClient, sim: Simulator) -> None:
    name = sim.site_names()[1]
    sim.set_faults(name, down=True)
    site = register(api, sim, name)
    assert site["availability"] == "unknown"
    assert "connect" in site["last_error"].lower()


def test_down_site_goes_offline_after_two_audits_and_returns(api: TestClient, rt: Runtime, sim: Simulator
                                                             ) -> None:
    names = sim.site_names()[:3]
    for name in names:
        register(api, sim, name)
    sim.set_faults(names[1], down=True)
    rt.audit_now()
    assert api.get(f"/v1/sites/{names[1]}").json()["availability"] == "online"
    rt.audit_now()
    states = {n: api.get(f"/v1/sites/{n}").json()["availability"] for n in names}
    assert states == {names[0]: "online", names[1]: "offline", names[2]: "online"}
    sim.clear_faults(names[1])
    rt.audit_now()
    assert api.get(f"/v1/sites/{names[1]}").json()["availability"] == "online"
    moves = [(e["details"]["from"], e["details"]["to"]) for e in
             api.get(f"/v1/events?site={names[1]}&kind=site.availability").json()["events"]]
    assert moves == [("offline", "online"), ("online", "offline"), ("unknown", "online")]


def test_auth_failure_and_hang_are_reported(api: TestClient, rt: Runtime, sim: Simulator) -> None:
    bad_auth, hung = sim.site_names()[3], sim.site_names()[4]
    register(api, sim, bad_auth)
    register(api, sim, hung)
    sim.set_faults(bad_auth, auth_fail=True)
    sim.set_faults(hung, hang=True)
    rt.audit_now()
    report = rt.audit_now()
    assert report.seconds < 30  # bounded by the site timeout, not stuck
    bad = api.get(f"/v1/sites/{bad_auth}").json()
    assert bad["availability"] == "offline" and "401" in bad["last_error"]
    slow = api.get(f"/v1/sites/{hung}").json()
    assert slow["availability"] == "offline" and "time" in slow["last_error"].lower()


def test_one_service_failing_makes_the_site_degraded(api: TestClient, rt: Runtime, sim: Simulator) -> None:
    name = sim.site_names()[5]
    register(api, sim, name)
    sim.set_faults(name, error_rate=1.0, services=["compute"])
    rt.audit_now()
    site = api.get(f"/v1/sites/{name}").json()
    assert site["availability"] == "degraded", site
    failed = [s["type"] for s in site["capabilities"]["services"] if s["status"] == "failed"]
    assert failed == ["compute"]
