"""Boots through Skyfleet on simulated sites, checked with openstacksdk: an explicit site and AZ, a
quota refusal recorded (and no spill for an explicit site), an Idempotency-Key replay, a boot cut
short after its create found again by its mark (no duplicate), a lazy image copied before the boot,
delete and stop passed through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Operation
from skyfleet.simulator import Simulator
from tests.engine_support import Fleet, observe_inventory, simulated_fleet
from tests.functional.test_images_on_simulator import connect, images_named, run, upload


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime],
          db_url: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=3) as made:
        yield made


def servers_on(sim: Simulator, site: str, name: str) -> list[Any]:
    return [s for s in connect(sim, site).compute.servers(all_projects=True) if s.name == name]


def test_an_explicit_boot_lands_on_its_site_and_az_and_is_managed(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    made = client.post("/v1/servers", json={"name": "web", "flavor": "m1.tiny", "image": "base",
                                            "placement": {"site": b, "availability_zone": "nova"}})
    assert made.status_code == 202, made.text
    [server] = made.json()["servers"]
    assert server["status"] == "booting" and server["site"] == b
    run(runtime, engine)
    shown = client.get(f"/v1/servers/{server['id']}").json()
    assert (shown["status"], shown["site"], shown["availability_zone"]) == ("active", b, "nova"), shown
    [remote] = servers_on(sim, b, "web")
    assert remote.id == shown["remote_id"] and remote.metadata["skyfleet_server"] == server["id"]
    assert remote.status == "ACTIVE" and servers_on(sim, a, "web") == []
    assert client.post(f"/v1/servers/{server['id']}/action", json={"action": "stop"}).status_code == 202
    run(runtime, engine)
    assert connect(sim, b).compute.get_server(remote.id).status == "SHUTOFF"
    history = client.get(f"/v1/servers/{server['id']}/actions").json()
    assert history["site"] == b and [a["action"] for a in history["actions"]] == ["stop", "create"]
    console = client.get(f"/v1/servers/{server['id']}/console", params={"length": 1}).json()["output"]
    assert console.strip() == "[  3.000000] nova: stop"
    assert client.get(f"/v1/servers/{server['id']}/console", params={"length": 0}).status_code == 422
    assert client.delete(f"/v1/servers/{server['id']}").status_code == 202
    run(runtime, engine)
    assert client.get(f"/v1/servers/{server['id']}").json()["status"] == "deleted"
    assert servers_on(sim, b, "web") == []


def test_a_refusing_explicit_site_is_recorded_and_not_spilled(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    _a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    sim.set_faults(b, quota_exceeded=True)
    made = client.post("/v1/servers", json={"name": "full", "flavor": "m1.tiny", "image": "base",
                                            "placement": {"site": b}})
    run(runtime, engine)
    shown = client.get(f"/v1/servers/{made.json()['servers'][0]['id']}").json()
    assert shown["status"] == "failed" and len(shown["attempts"]) == 1, shown
    assert shown["attempts"][0]["site_name"] == b and "quota exceeded" in shown["attempts"][0]["error"].lower()
    sim.clear_faults(b)
    assert servers_on(sim, b, "full") == []
    events = client.get("/v1/events", params={"kind": "server.refused,server.failed"}).json()["events"]
    assert sorted(e["kind"] for e in events) == ["server.failed", "server.refused"]


def test_an_idempotency_key_replays_and_a_cut_short_boot_is_not_duplicated(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    _a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    body = {"name": "once", "flavor": "m1.tiny", "image": "base", "placement": {"site": b}, "count": 2}
    first = client.post("/v1/servers", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post("/v1/servers", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and again.status_code == 200 and again.json()["replayed"] is True
    assert [s["id"] for s in first.json()["servers"]] == [s["id"] for s in again.json()["servers"]]
    # the worker died right after its create reached the site: the server is there with its mark
    one = first.json()["servers"][0]
    conn = connect(sim, b)
    flavor = conn.compute.find_flavor("m1.tiny")
    image = conn.image.find_image("base")
    conn.compute.create_server(name="once-1", flavor_id=flavor.id, image_id=image.id,
                               metadata={"skyfleet_server": one["id"]}, networks="none")
    run(runtime, engine)
    assert sorted(s.name for s in servers_on(sim, b, "once-1") + servers_on(sim, b, "once-2")) == ["once-1",
                                                                                                "once-2"]
    assert {client.get(f"/v1/servers/{s['id']}").json()["status"] for s in first.json()["servers"]} == {"active"}


def test_a_lazy_image_is_copied_to_the_site_before_the_boot(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _c = sim.site_names()
    source = upload(sim, a, "golden")
    assert client.post("/v1/images", json={"name": "golden", "source": {"site": a, "image_id": source},
                                           "mode": "lazy"}).status_code == 202
    observe_inventory(runtime)
    made = client.post("/v1/servers", json={"name": "lazy-vm", "flavor": "m1.tiny", "image": "golden",
                                            "placement": {"site": b}})
    assert made.status_code == 202 and made.json()["servers"][0]["status"] == "waiting-image", made.text
    assert images_named(sim, b, "golden") == []
    with transaction(runtime.factory) as session:  # the copy is the booting user's work: the user's lane
        copying = session.scalars(select(Operation.user_id).where(Operation.kind == "sync.image")).all()
    assert copying and None not in copying, copying
    run(runtime, engine, rounds=10)
    [copy] = images_named(sim, b, "golden")
    [remote] = servers_on(sim, b, "lazy-vm")
    assert remote.image["id"] == copy["id"] and remote.status == "ACTIVE"
    assert client.get(f"/v1/servers/{made.json()['servers'][0]['id']}").json()["status"] == "active"


def test_nothing_to_place_is_a_conflict_with_the_reasons(fleet: Any) -> None:
    sim, runtime, client, _engine = fleet
    _a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    refused = client.post("/v1/servers", json={"name": "x", "flavor": "m1.tiny", "image": "base",
                                               "placement": {"site": "nowhere"}})
    assert refused.status_code == 409 and "no site can take" in refused.json()["detail"]
    bad = client.post("/v1/servers", json={"name": "x", "flavor": "m1.tiny", "image": "base",
                                           "placement": {"availability_zone": "nova"}})
    assert bad.status_code == 422 and "availability_zone needs an explicit site" in bad.text
    dry = client.post("/v1/servers", params={"dry_run": "true"}, json={"name": "x", "flavor": "m1.tiny",
                                                                       "image": "base", "placement": {"site": b}})
    assert dry.status_code == 200 and [c["site_name"] for c in dry.json()["plan"]["candidates"]] == [b]
    assert client.get("/v1/servers").json()["servers"] == []  # a dry run boots nothing


@pytest.fixture
def five(runtime_factory: Callable[..., Runtime],
         db_url: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=5, site_timeout=2) as made:
        yield made


def test_a_site_going_offline_during_a_spread_sends_its_servers_to_the_others(five: Any) -> None:
    sim, runtime, client, engine = five
    sites = sim.site_names()
    for site in sites:
        upload(sim, site, "base")
    observe_inventory(runtime)
    made = client.post("/v1/servers", json={"name": "spread", "flavor": "m1.nano", "image": "base", "count": 20,
                                            "placement": {"policy": "spread", "min_sites": 5}})
    assert made.status_code == 202, made.text
    assigned = {s["site"] for s in made.json()["servers"]}
    assert assigned == set(sites)  # spread over all five
    down = sites[2]
    sim.set_faults(down, down=True)  # the site drops off before its boots run
    run(runtime, engine, rounds=12)
    rows = [client.get(f"/v1/servers/{s['id']}").json() for s in made.json()["servers"]]
    assert {r["status"] for r in rows} == {"active"}, [(r["name"], r["status"], r["error"]) for r in rows]
    assert {r["site"] for r in rows} == set(sites) - {down}  # the 20 landed on the 4 others
    moved = [r for r in rows if r["attempts"]]
    assert len(moved) == 4 and all(r["attempts"][0]["site_name"] == down for r in moved)
    assert all(r["attempts"][0]["error"] for r in moved)  # every refused attempt with the site's error
    sim.clear_faults(down)
    assert sum(len(servers_on(sim, s, r["name"])) for s in sites for r in rows) == 20  # one each, nowhere twice


def test_a_booting_server_is_in_the_global_view_before_it_is_active(fleet: Any) -> None:
    """The global view shows a server Skyfleet boots while it builds (not only after the next inventory
    refresh, which this test never runs after the boot), then ACTIVE, with its site and project."""
    sim, runtime, client, engine = fleet
    _a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    sim.fleet.sites[b].boot_delay = 4.0
    made = client.post("/v1/servers", json={"name": "slow", "flavor": "m1.tiny", "image": "base",
                                            "placement": {"site": b}})
    assert made.status_code == 202, made.text
    [server] = made.json()["servers"]

    def rows() -> list[dict[str, Any]]:
        answer = client.get("/v1/inventory/servers", params={"site": b, "name": "slow"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    assert rows() == []
    worker = threading.Thread(target=run, args=(runtime, engine))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not rows() and time.monotonic() < deadline:
            time.sleep(0.1)
        [building] = rows()
        assert building["status"] == "BUILD", building
    finally:
        worker.join(60)
    [remote] = servers_on(sim, b, "slow")
    [active] = rows()
    assert (active["remote_id"], active["status"], active["site"]) == (remote.id, "ACTIVE", b), active
    assert client.get(f"/v1/servers/{server['id']}").json()["status"] == "active"


def test_stop_of_a_stopped_server_and_start_of_a_running_one_succeed_without_a_call(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    _a, b, _c = sim.site_names()
    upload(sim, b, "base")
    observe_inventory(runtime)
    made = client.post("/v1/servers", json={"name": "web", "flavor": "m1.tiny", "image": "base",
                                            "placement": {"site": b}})
    server_id = made.json()["servers"][0]["id"]
    run(runtime, engine)
    remote_id = client.get(f"/v1/servers/{server_id}").json()["remote_id"]
    for action, status in (("start", "ACTIVE"), ("stop", "SHUTOFF"), ("stop", "SHUTOFF"), ("start", "ACTIVE"),
                           ("start", "ACTIVE")):
        answer = client.post(f"/v1/servers/{server_id}/action", json={"action": action})
        assert answer.status_code == 202, answer.text
        run(runtime, engine)
        operation = client.get(f"/v1/operations/{answer.json()['operation_id']}").json()
        assert operation["state"] == "succeeded", (action, operation["tasks"])
        assert client.get(f"/v1/servers/{server_id}").json()["error"] is None
        assert connect(sim, b).compute.get_server(remote_id).status == status
    history = client.get(f"/v1/servers/{server_id}/actions").json()
    assert [a["action"] for a in history["actions"]] == ["start", "stop", "create"]
