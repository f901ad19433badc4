"""Desired keypairs, flavors and security groups on simulated sites: convergence, adoption, name
conflicts, drift repaired by the audit, offline sites, faults, a new site joining, delete with and
without purge, and which user owns a keypair copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync import service
from skyfleet.domains.sync.converge import converge
from skyfleet.domains.sync.schemas import ResourceCreate
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.sync_audit import run_sync_audit
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, Fleet, register_sites, simulated_fleet

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vb29vb29vb29vb29vb29vb29vb29vb29vb29vb29v other"


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime],
          db_url: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=3) as made:
        yield made


def run(runtime: Runtime, engine: Engine) -> None:
    """Run every task now, retries included (no waiting on backoff)."""
    for _ in range(5):
        with transaction(runtime.factory) as session:
            session.execute(update(Task).where(Task.state == "pending").values(next_attempt_at=utcnow()))
        if engine.run_until_idle() == 0:
            return


def statuses(client: TestClient, path: str) -> dict[str, str]:
    body = client.get(path).json()
    return {b["site_name"]: b["status"] for b in body["bindings"]}


def keypairs(sim: Simulator, site: str) -> dict[tuple[str, str], Any]:
    return dict(sim.state(site).nova.keypairs)


def test_keypair_converges_adopts_refuses_and_deletes(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    # site b already has the identical key (adopted); site c has another key under the name (refused)
    _precreate(sim, b, "fleet-key", PUBLIC_KEY)
    _precreate(sim, c, "fleet-key", OTHER_KEY)
    made = client.post("/v1/keypairs", json={"spec": {"name": "fleet-key", "public_key": PUBLIC_KEY}})
    assert made.status_code == 202, made.text
    assert made.json()["operation_id"]
    run(runtime, engine)
    body = client.get("/v1/keypairs/fleet-key").json()
    by_site = {x["site_name"]: x for x in body["bindings"]}
    assert by_site[a]["status"] == "in-sync" and by_site[a]["owned"] is True
    assert by_site[b]["status"] == "in-sync" and by_site[b]["owned"] is False
    assert by_site[c]["status"] == "failed" and "set force" in by_site[c]["error"]
    admin = next(u for u in sim.state(a).keystone.users.values() if u["name"] == "admin")
    assert {kp["user_id"] for (_, n), kp in keypairs(sim, a).items() if n == "fleet-key"} == {admin["id"]}
    # delete without purge: only the copy Skyfleet created goes; the adopted and the foreign one stay
    assert client.delete("/v1/keypairs/fleet-key").status_code == 202
    run(runtime, engine)
    client.get("/v1/keypairs")  # folds the finished deletes
    assert client.get("/v1/keypairs/fleet-key").status_code == 404
    assert not any(n == "fleet-key" for (_, n) in keypairs(sim, a))
    assert any(n == "fleet-key" for (_, n) in keypairs(sim, b))
    assert any(kp["public_key"] == OTHER_KEY for kp in keypairs(sim, c).values())


def _precreate(sim: Simulator, site: str, name: str, key: str) -> None:
    import openstack

    cloud = sim.cloud(site)
    conn = openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"), auth_type="password")
    conn.compute.create_keypair(name=name, public_key=key)


def test_force_takes_over_and_purge_deletes_everything(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    b = sim.site_names()[1]
    _precreate(sim, b, "forced", OTHER_KEY)
    client.post("/v1/keypairs", json={"spec": {"name": "forced", "public_key": PUBLIC_KEY}, "force": True})
    run(runtime, engine)
    assert set(statuses(client, "/v1/keypairs/forced").values()) == {"in-sync"}
    assert all(kp["public_key"] == PUBLIC_KEY for (_, n), kp in keypairs(sim, b).items() if n == "forced")
    client.delete("/v1/keypairs/forced", params={"purge": True})
    run(runtime, engine)
    client.get("/v1/keypairs")
    for site in sim.site_names():
        assert not any(n == "forced" for (_, n) in keypairs(sim, site))


def test_drift_repaired_offline_site_catches_up_new_site_joins(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _ = sim.site_names()
    with transaction(runtime.factory) as session:
        session.execute(update(Site).where(Site.name == b).values(availability="offline"))
    client.post("/v1/keypairs", json={"spec": {"name": "drift", "public_key": PUBLIC_KEY}})
    run(runtime, engine)
    assert statuses(client, "/v1/keypairs/drift")[b] == "unknown"
    assert not any(n == "drift" for (_, n) in keypairs(sim, b))
    # out-of-band delete in a; b comes back; a new site registers
    for key in [k for k in keypairs(sim, a) if k[1] == "drift"]:
        del sim.state(a).nova.keypairs[key]
    with transaction(runtime.factory) as session:
        session.execute(update(Site).where(Site.name == b).values(availability="online"))
    new = sim.add_site()
    register_sites(runtime.factory, runtime.box, sim, [new])
    assert runtime.sync_audit_now() == 1  # the periodic job: one resource had sites to converge
    run(runtime, engine)
    final = statuses(client, "/v1/keypairs/drift")
    assert final == {name: "in-sync" for name in sim.site_names()}
    for site in (a, b, new):
        assert any(n == "drift" for (_, n) in keypairs(sim, site))
    repaired = client.get("/v1/events", params={"kind": "sync.drift_repaired"}).json()["events"]
    assert [e["site_name"] for e in repaired] == [a]  # b and the new site were created, not repaired


def test_5xx_and_401_faults_retry_then_converge(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _ = sim.site_names()
    sim.set_faults(a, error_rate=1.0)
    sim.set_faults(b, auth_fail=True)
    client.post("/v1/keypairs", json={"spec": {"name": "faulty", "public_key": PUBLIC_KEY}})
    client.post("/v1/security-groups", json={"spec": {"name": "faulty"}})
    engine.run_until_idle()
    for path in ("/v1/keypairs/faulty", "/v1/security-groups/faulty"):
        by_site = {x["site_name"]: x for x in client.get(path).json()["bindings"]}
        assert by_site[a]["status"] == "pending" and "HTTP 5" in by_site[a]["error"], by_site[a]
        assert by_site[b]["status"] == "pending" and by_site[b]["error"], by_site[b]
    sim.clear_faults()
    run(runtime, engine)
    assert set(statuses(client, "/v1/keypairs/faulty").values()) == {"in-sync"}
    assert set(statuses(client, "/v1/security-groups/faulty").values()) == {"in-sync"}


def test_keypair_copy_belongs_to_the_callers_mapped_user(fleet: Any) -> None:
    sim, runtime, _client, engine = fleet
    caller = service.Caller(user_id="home-id-of-demo", user_name="demo", project_id="p", project_name="demo",
                            is_admin=False)
    with transaction(runtime.factory) as session:
        resource = service.create(session, kind="keypair", spec={"name": "mine", "public_key": PUBLIC_KEY},
                                  data=ResourceCreate(spec={}), caller=caller, now=utcnow())
        converge(session, resource, now=utcnow())
    run(runtime, engine)
    for site in sim.site_names():
        demo = next(u for u in sim.state(site).keystone.users.values() if u["name"] == "demo")
        owners = {kp["user_id"] for (_, n), kp in keypairs(sim, site).items() if n == "mine"}
        assert owners == {demo["id"]}


def test_flavor_extra_specs_access_drift_and_replace(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a = sim.site_names()[0]
    spec = {"name": "m1.sync", "vcpus": 2, "ram": 1024, "disk": 10, "is_public": False,
            "extra_specs": {"hw:cpu_policy": "dedicated"}, "access": [{"name": "demo"}]}
    assert client.post("/v1/flavors", json={"spec": spec}).status_code == 202
    run(runtime, engine)
    assert set(statuses(client, "/v1/flavors/m1.sync").values()) == {"in-sync"}
    flavor = next(f for f in sim.state(a).nova.flavors.values() if f["name"] == "m1.sync")
    demo = next(p for p in sim.state(a).keystone.projects.values() if p["name"] == "demo")
    assert demo["id"] in flavor["_access"]
    flavor["_extra_specs"]["hw:cpu_policy"] = "shared"  # drift behind Skyfleet's back
    flavor["vcpus"] = 4
    run_sync_audit(runtime.factory)
    run(runtime, engine)
    assert statuses(client, "/v1/flavors/m1.sync")[a] == "out-of-sync"
    assert flavor["_extra_specs"]["hw:cpu_policy"] == "dedicated"
    client.patch("/v1/flavors/m1.sync", json={"replace": True})
    run(runtime, engine)
    assert statuses(client, "/v1/flavors/m1.sync")[a] == "in-sync"
    assert next(f for f in sim.state(a).nova.flavors.values() if f["name"] == "m1.sync")["vcpus"] == 2


def test_security_group_with_remote_group_rule_and_drift(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a = sim.site_names()[0]
    rules = [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"},
             {"protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_group": "web"}]
    made = client.post("/v1/security-groups", json={"spec": {"name": "web", "description": "w", "rules": rules}})
    assert made.status_code == 202, made.text
    run(runtime, engine)
    assert set(statuses(client, "/v1/security-groups/web").values()) == {"in-sync"}
    neutron = sim.state(a).neutron
    group = next(g for g in neutron.security_groups.values() if g["name"] == "web")
    mine = [r for r in neutron.security_group_rules.values() if r["security_group_id"] == group["id"]]
    assert any(r.get("remote_group_id") == group["id"] and r["port_range_min"] == 5432 for r in mine)
    ssh = next(r for r in mine if r["port_range_min"] == 22)
    del neutron.security_group_rules[ssh["id"]]
    run_sync_audit(runtime.factory)
    run(runtime, engine)
    again = [r for r in neutron.security_group_rules.values() if r["security_group_id"] == group["id"]]
    assert sum(r["port_range_min"] == 22 for r in again) == 1


def test_bad_input_is_a_4xx_with_the_reason(fleet: Any) -> None:
    _sim, _runtime, client, _engine = fleet
    bad = client.post("/v1/keypairs", json={"spec": {"name": "x", "public_key": "short"}})
    assert bad.status_code == 400 and "public_key" in bad.json()["detail"]
    unknown = client.post("/v1/flavors", json={"spec": {"name": "f", "vcpus": 1, "ram": 1, "colour": 1}})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    nowhere = client.post("/v1/keypairs", json={"spec": {"name": "k", "public_key": PUBLIC_KEY},
                                                "placement": {"sites": ["nope"]}})
    assert nowhere.status_code == 400 and "nope" in nowhere.json()["detail"]
    client.post("/v1/keypairs", json={"spec": {"name": "dup", "public_key": PUBLIC_KEY}})
    assert client.post("/v1/keypairs", json={"spec": {"name": "dup", "public_key": PUBLIC_KEY}}).status_code == 409


def test_a_deregistered_site_drops_its_binding_and_an_unmanaged_one_is_left_alone(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    client.post("/v1/keypairs", json={"spec": {"name": "gone", "public_key": PUBLIC_KEY},
                                      "placement": {"sites": [a, b, c]}})
    run(runtime, engine)
    assert client.delete(f"/v1/sites/{a}").status_code == 204
    with transaction(runtime.factory) as session:
        session.execute(update(Site).where(Site.name == b).values(managed=False))
    assert run_sync_audit(runtime.factory) == 1
    audit_op = client.get("/v1/keypairs/gone").json()["operation_id"]
    assert [t["site_name"] for t in client.get(f"/v1/operations/{audit_op}").json()["tasks"]] == [c]
    run(runtime, engine)
    assert statuses(client, "/v1/keypairs/gone") == {b: "in-sync", c: "in-sync"}
    client.delete("/v1/keypairs/gone")
    run(runtime, engine)
    assert statuses(client, "/v1/keypairs/gone") == {b: "in-sync"}  # b is not touched while unmanaged
    assert any(n == "gone" for (_, n) in keypairs(sim, b))
    assert not any(n == "gone" for (_, n) in keypairs(sim, c))
