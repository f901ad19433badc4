"""A crash between creating a copy in a site and recording it must not make Skyfleet forget the copy
is its own: the attempt after the crash finds the object, knows from the intent its predecessor
recorded before the call that Skyfleet made it (owned, not adopted), and a delete without purge
then removes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, fresh_clock, register_sites

SPECS = {"keypairs": {"name": "crash-key", "public_key": PUBLIC_KEY},
         "security-groups": {"name": "crash-sg", "description": "web",
                             "rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}]}}


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime], db_url: str) -> Iterator[tuple[Simulator, Runtime, TestClient]]:
    sim = Simulator(sites=2)
    sim.start()
    runtime = runtime_factory(db_url)
    register_sites(runtime.factory, runtime.box, sim)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield sim, runtime, client
    sim.stop()


def present(sim: Simulator, site: str, path: str) -> bool:
    state = sim.state(site)
    name = SPECS[path]["name"]
    if path == "keypairs":
        return any(kp["name"] == name for kp in state.nova.keypairs.values())
    return any(g["name"] == name for g in state.neutron.security_groups.values())


@pytest.mark.parametrize("path", sorted(SPECS))
def test_copy_created_before_a_crash_is_owned_and_deleted(fleet: Any, path: str) -> None:
    sim, runtime, client = fleet
    a, _ = sim.site_names()
    clock = fresh_clock()
    engine = Engine(runtime.factory, box=runtime.box, clock=clock,
                    config=EngineConfig(site_timeout=5, lease_seconds=30))
    made = client.post(f"/v1/{path}", json={"spec": SPECS[path], "placement": {"sites": [a]}})
    assert made.status_code == 202, made.text
    [work] = engine.lease(10)
    engine.execute(work)  # the copy is created in site a ...
    assert present(sim, a, path)
    # ... and the worker dies before recording it: no outcome; the lease expires
    clock.advance(31)
    assert engine.run_until_idle() == 1  # the next attempt finds the copy
    [binding] = client.get(f"/v1/{path}/{SPECS[path]['name']}").json()["bindings"]
    assert (binding["site_name"], binding["status"], binding["owned"]) == (a, "in-sync", True)
    assert client.delete(f"/v1/{path}/{SPECS[path]['name']}").status_code == 202  # no purge
    engine.run_until_idle()
    assert not present(sim, a, path)
    assert client.get(f"/v1/{path}/{SPECS[path]['name']}").status_code == 404


def test_a_copy_found_without_a_recorded_create_is_still_adopted(fleet: Any) -> None:
    sim, runtime, client = fleet
    a, _ = sim.site_names()
    import openstack

    cloud = sim.cloud(a)
    openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"),
                      auth_type="password").compute.create_keypair(name="crash-key", public_key=PUBLIC_KEY)
    clock = fresh_clock()
    engine = Engine(runtime.factory, box=runtime.box, clock=clock, config=EngineConfig(site_timeout=5))
    client.post("/v1/keypairs", json={"spec": SPECS["keypairs"], "placement": {"sites": [a]}})
    [work] = engine.lease(10)
    engine.execute(work)  # sees the user's own key: nothing to create, nothing recorded
    clock.advance(31)
    assert engine.run_until_idle() == 1
    [binding] = client.get("/v1/keypairs/crash-key").json()["bindings"]
    assert binding["owned"] is False
    client.delete("/v1/keypairs/crash-key")
    engine.run_until_idle()
    assert present(sim, a, "keypairs")  # not Skyfleet's: kept


@pytest.mark.parametrize("then", ["patch", "delete"])
def test_a_cancelled_create_is_inherited_by_the_next_task(fleet: Any, then: str) -> None:
    sim, runtime, client = fleet
    a, _ = sim.site_names()
    clock = fresh_clock()
    engine = Engine(runtime.factory, box=runtime.box, clock=clock, config=EngineConfig(site_timeout=5))
    client.post("/v1/keypairs", json={"spec": SPECS["keypairs"], "placement": {"sites": [a]}})
    [work] = engine.lease(10)
    engine.execute(work)  # created in site a; the worker dies before recording it
    # the user changes or deletes the resource meanwhile: the open task is cancelled and a new one made
    if then == "patch":
        assert client.patch("/v1/keypairs/crash-key", json={"force": True}).status_code == 202
        engine.run_until_idle()
        [binding] = client.get("/v1/keypairs/crash-key").json()["bindings"]
        assert binding["owned"] is True
        client.delete("/v1/keypairs/crash-key")
    else:
        assert client.delete("/v1/keypairs/crash-key").status_code == 202
    engine.run_until_idle()
    assert not present(sim, a, "keypairs")  # Skyfleet's copy, so a delete without purge removes it
