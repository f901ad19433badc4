"""Kingbird v1.0 os-sync on simulated sites: the exact shapes python-kingbirdclient reads, a copy of a
keypair, a flavor and a security group from one site to two others, adoption and refusal in the
targets, list/active/show/delete, and bad requests answered 4xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, register_sites

URL = "/v1.0/8f3a4a0e5b6c4d2e9f1a2b3c4d5e6f70/os-sync/"  # any project id (noauth: no project of its own)


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime]) -> Iterator[tuple[Simulator, TestClient, Engine]]:
    sim = Simulator(sites=3)
    sim.start()
    runtime = runtime_factory()
    register_sites(runtime.factory, runtime.box, sim)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield sim, client, engine
    sim.stop()


def finish(client: TestClient, engine: Engine, job_id: str) -> list[dict[str, Any]]:
    for _ in range(5):
        engine.run_until_idle()
        rows: list[dict[str, Any]] = client.get(URL + job_id).json()["job_set"]
        if rows and all(r["sync_status"] != "IN_PROGRESS" for r in rows):
            return rows
    raise AssertionError(f"job {job_id} did not finish: {rows}")


def _sdk(sim: Simulator, site: str) -> Any:
    import openstack

    cloud = sim.cloud(site)
    return openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"), auth_type="password")


def test_copy_keypair_from_a_to_b_and_c(fleet: Any) -> None:
    sim, client, engine = fleet
    a, b, c = sim.site_names()
    _sdk(sim, a).compute.create_keypair(name="kb-key", public_key=PUBLIC_KEY)
    made = client.post(URL, json={"resource_set": {"resource_type": "keypair", "resources": ["kb-key"],
                                                   "source": a, "target": [b, c], "force": "False"}})
    assert made.status_code == 200, made.text
    job = made.json()["job_status"]
    assert job["status"] == "IN_PROGRESS" and job["id"] and job["created_at"]
    rows = finish(client, engine, job["id"])
    assert {(r["target_region"], r["sync_status"]) for r in rows} == {(b, "SUCCESS"), (c, "SUCCESS")}
    assert set(rows[0]) >= {"id", "resource", "source_region", "target_region", "resource_type", "sync_status",
                            "created_at", "updated_at"}
    for site in (b, c):
        assert any(kp["public_key"] == PUBLIC_KEY for kp in sim.state(site).nova.keypairs.values())
    listed = client.get(URL).json()["job_set"]
    assert [(j["id"], j["sync_status"]) for j in listed] == [(job["id"], "SUCCESS")]
    assert set(listed[0]) == {"id", "sync_status", "created_at", "updated_at"}
    assert client.get(URL + "active").json() == {"job_set": []}
    assert client.delete(URL + job["id"]).status_code == 200
    assert client.get(URL + job["id"]).status_code == 404
    assert any(kp["name"] == "kb-key" for kp in sim.state(b).nova.keypairs.values())  # copies stay


def test_copy_flavor_and_security_group_and_conflicts(fleet: Any) -> None:
    sim, client, engine = fleet
    a, b, c = sim.site_names()
    src = _sdk(sim, a)
    flavor = src.compute.create_flavor(name="kb.flavor", vcpus=2, ram=256, disk=1)
    src.compute.create_flavor_extra_specs(flavor, {"hw:mem_page_size": "large"})
    _sdk(sim, c).compute.create_flavor(name="kb.flavor", vcpus=8, ram=256, disk=1)  # same name, different
    group = src.network.create_security_group(name="kb-sg", description="d")
    src.network.create_security_group_rule(security_group_id=group.id, direction="ingress", protocol="tcp",
                                           port_range_min=80, port_range_max=80, remote_group_id=group.id)
    job = client.post(URL, json={"resource_set": {"resource_type": "flavor", "resources": ["kb.flavor"],
                                                  "source": a, "target": [b, c]}}).json()["job_status"]["id"]
    rows = {r["target_region"]: r for r in finish(client, engine, job)}
    assert rows[b]["sync_status"] == "SUCCESS"
    assert rows[c]["sync_status"] == "FAILURE" and "force" in rows[c]["error"]
    copied = next(f for f in sim.state(b).nova.flavors.values() if f["name"] == "kb.flavor")
    assert copied["_extra_specs"] == {"hw:mem_page_size": "large"}
    sg_job = client.post(URL, json={"resource_set": {"Sync": [{"resource_type": "security_group",
                                                               "resources": ["kb-sg"], "source": a,
                                                               "target": b}]}}).json()["job_status"]["id"]
    assert {r["sync_status"] for r in finish(client, engine, sg_job)} == {"SUCCESS"}
    neutron = sim.state(b).neutron
    copy = next(g for g in neutron.security_groups.values() if g["name"] == "kb-sg")
    assert any(r.get("remote_group_id") == copy["id"] and r.get("port_range_min") == 80
               for r in neutron.security_group_rules.values())


def test_bad_requests_are_4xx(fleet: Any) -> None:
    sim, client, _engine = fleet
    a, b, _ = sim.site_names()
    bad_type = client.post(URL, json={"resource_set": {"resource_type": "volume", "resources": ["x"],
                                                       "source": a, "target": [b]}})
    assert bad_type.status_code == 400 and "resource_type" in bad_type.json()["detail"]
    no_image = client.post(URL, json={"resource_set": {"resource_type": "image", "resources": ["x"],
                                                       "source": a, "target": [b]}})
    assert no_image.status_code == 404 and "image" in no_image.json()["detail"]  # as Kingbird: not in the source
    nowhere = client.post(URL, json={"resource_set": {"resource_type": "keypair", "resources": ["x"],
                                                      "source": "RegionNope", "target": [b]}})
    assert nowhere.status_code == 400 and "RegionNope" in nowhere.json()["detail"]
    missing = client.post(URL, json={"resource_set": {"resource_type": "keypair", "resources": ["absent"],
                                                      "source": a, "target": [b]}})
    assert missing.status_code == 404 and "absent" in missing.json()["detail"]  # as Kingbird, before any job
    assert client.get(URL).json() == {"job_set": []}
    assert client.get(URL + "no-such-job").status_code == 400  # not a job id (a UUID)
    assert client.get(URL + "0b6f6b7e-0000-4000-8000-000000000000").status_code == 404
