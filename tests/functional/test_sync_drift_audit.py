"""The drift audit on simulated sites: one listing per site per kind compares every declared keypair,
flavor and security group; only the drifted (resource, site) pairs get a repair task; the sites that did
not drift receive no write; its site reads yield to user-started work (priority lanes)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.drivers.openstack import syncapi
from skyfleet.reconcile import drift
from skyfleet.reconcile.engine import Engine
from skyfleet.reconcile.lanes import Lanes
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, Fleet, simulated_fleet

WRITES = ("POST", "PUT", "PATCH", "DELETE")
RULES = [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"},
         {"protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_group": "db"}]


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime], db_url: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=3) as made:
        yield made


def run(runtime: Runtime, engine: Engine) -> None:
    for _ in range(5):
        with transaction(runtime.factory) as session:
            session.execute(update(Task).where(Task.state == "pending").values(next_attempt_at=utcnow()))
        if engine.run_until_idle() == 0:
            return


def statuses(client: TestClient, path: str) -> dict[str, str]:
    return {b["site_name"]: b["status"] for b in client.get(path).json()["bindings"]}


def declare_mix(client: TestClient) -> None:
    for name in ("k1", "k2", "k3"):
        assert client.post("/v1/keypairs", json={"spec": {"name": name, "public_key": PUBLIC_KEY}}).status_code == 202
    for name in ("f1", "f2"):
        spec = {"name": name, "vcpus": 1, "ram": 512, "disk": 1, "extra_specs": {"hw:cpu_policy": "shared"}}
        assert client.post("/v1/flavors", json={"spec": spec}).status_code == 202
    assert client.post("/v1/security-groups", json={"spec": {"name": "db", "description": "d"}}).status_code == 202
    assert client.post("/v1/security-groups", json={"spec": {"name": "web", "rules": RULES}}).status_code == 202


def site_calls(sim: Simulator, site: str) -> dict[tuple[str, str], int]:
    """The calls ``site`` received, identity (token) calls left out."""
    return {k: n for k, n in sim.counters(site).items() if not k[1].startswith("/identity")}


def tasks(runtime: Runtime) -> int:
    with transaction(runtime.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Task)) or 0)


def test_an_unchanged_site_gets_one_listing_per_kind_and_no_task(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    declare_mix(client)
    run(runtime, engine)
    for path in ("/v1/keypairs/k1", "/v1/flavors/f1", "/v1/security-groups/web"):
        assert set(statuses(client, path).values()) == {"in-sync"}, path
    before = tasks(runtime)
    sim.reset_counters()
    report = runtime.drift_audit_now()
    assert (report.sites, report.compared, report.drifted, report.failed) == (3, 3 * 7, 0, 0)
    assert report.calls == 9 and tasks(runtime) == before  # nothing drifted: nothing written, no task
    for site in sim.site_names():
        assert site_calls(sim, site) == {("GET", "/compute/v2.1/os-keypairs"): 1,
                                         ("GET", "/compute/v2.1/flavors/detail"): 1,
                                         ("GET", "/network/v2.0/security-groups"): 1}, site
    # the periodic converge pass leaves in-sync listed kinds to the drift audit: no task, no site call
    sim.reset_counters()
    assert runtime.sync_converge_now() == set()
    assert all(site_calls(sim, site) == {} for site in sim.site_names())


def test_a_keypair_deleted_behind_skyfleets_back_comes_back_with_no_write_elsewhere(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    declare_mix(client)
    run(runtime, engine)
    nova = sim.state(b).nova
    for key in [k for k in nova.keypairs if k[1] == "k2"]:
        del nova.keypairs[key]
    sim.reset_counters()
    before = tasks(runtime)
    report = runtime.drift_audit_now()
    assert report.drifted == 1 and report.repaired == {_id(client, "/v1/keypairs/k2")}
    assert tasks(runtime) == before + 1  # one repair task, on b alone
    run(runtime, engine)
    assert any(n == "k2" for (_, n) in sim.state(b).nova.keypairs)
    assert statuses(client, "/v1/keypairs/k2") == {a: "in-sync", b: "in-sync", c: "in-sync"}
    for site in (a, c):
        assert not [k for k in site_calls(sim, site) if k[0] in WRITES], site
    assert [k for k in site_calls(sim, b) if k[0] in WRITES] == [("POST", "/compute/v2.1/os-keypairs")]
    repaired = client.get("/v1/events", params={"kind": "sync.drift_repaired"}).json()["events"]
    assert [e["site_name"] for e in repaired] == [b]
    assert runtime.drift_audit_now().drifted == 0  # repaired: the next audit finds nothing


def _id(client: TestClient, path: str) -> str:
    return str(client.get(path).json()["id"])


def test_an_altered_flavor_and_security_group_rule_are_repaired(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _ = sim.site_names()
    declare_mix(client)
    run(runtime, engine)
    flavor = next(f for f in sim.state(a).nova.flavors.values() if f["name"] == "f1")
    flavor["_extra_specs"]["hw:cpu_policy"] = "dedicated"
    neutron = sim.state(b).neutron
    web = next(g for g in neutron.security_groups.values() if g["name"] == "web")
    ssh = next(r for r in neutron.security_group_rules.values()
               if r["security_group_id"] == web["id"] and r.get("port_range_min") == 22)
    del neutron.security_group_rules[ssh["id"]]
    report = runtime.drift_audit_now()
    assert report.drifted == 2
    run(runtime, engine)
    assert flavor["_extra_specs"] == {"hw:cpu_policy": "shared"}
    rules = [r for r in neutron.security_group_rules.values() if r["security_group_id"] == web["id"]]
    assert sum(r.get("port_range_min") == 22 for r in rules) == 1
    assert set(statuses(client, "/v1/flavors/f1").values()) == {"in-sync"}
    assert set(statuses(client, "/v1/security-groups/web").values()) == {"in-sync"}
    assert runtime.drift_audit_now().drifted == 0


def test_a_user_task_in_flight_holds_the_audit_to_the_lanes_floor(fleet: Any, monkeypatch: Any) -> None:
    _sim, runtime, client, engine = fleet
    declare_mix(client)
    run(runtime, engine)
    lanes = Lanes(background_floor=1)
    seen: list[int] = []
    guard = threading.Lock()
    real = syncapi.list_keypairs

    def counting(conn: Any, *, user_id: str | None) -> dict[str, Any]:
        with guard:
            seen.append(lanes.background_in_flight)
        return real(conn, user_id=user_id)

    monkeypatch.setattr(syncapi, "list_keypairs", counting)
    with lanes.user_work():
        report = drift.scan_fleet(runtime.factory, box=runtime.box, concurrency=8, timeout=5, lanes=lanes)
    assert report.sites == 3 and report.failed == 0
    assert seen and max(seen) == 1  # one site read at a time while a user task runs
