"""Boots under a killed worker: 100 servers over 10 simulated sites (10 each: the sites' default
instance quota), booted by `skyfleet worker` processes on PostgreSQL; the first worker is killed
with kill -9 while servers are building. Every
server must end ACTIVE exactly once: no duplicate on any site (two remote servers with one mark) and
no orphan (a remote server no Skyfleet row points at)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openstack
import pytest
from sqlalchemy import func, select

from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.simulator import Simulator
from tests.engine_support import observe_inventory, register_sites, wait_until
from tests.integration.test_engine_faults import Fleet, fleet  # noqa: F401 (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.faults, pytest.mark.slow]
PER_SITE = 10


@pytest.fixture
def sim() -> Iterator[Simulator]:
    made = Simulator(sites=10, latency_ms=20, boot_delay=1.0)
    made.start()
    yield made
    made.stop()


def remote_servers(sim: Simulator, site: str) -> list[Any]:
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site))
    return list(conn.compute.servers(all_projects=True))


@pytest.mark.timeout(600)
def test_kill_9_mid_boot_leaves_no_duplicate_and_no_orphan(fleet: Fleet, sim: Simulator) -> None:  # noqa: F811
    register_sites(fleet.runtime.factory, fleet.runtime.box, sim)
    for site in sim.site_names():
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site))
        made = conn.image.post("/images", json={"name": "base", "disk_format": "raw",
                                                "container_format": "bare"}).json()
        conn.image.put(f"/images/{made['id']}/file", data=b"x" * 1024,
                       headers={"Content-Type": "application/octet-stream"})
    observe_inventory(fleet.runtime)
    first = fleet.start_worker(concurrency=8)
    ids = []
    for site in sim.site_names():
        answer = fleet.client.post("/v1/servers", json={"name": f"vm-{site}", "flavor": "m1.tiny", "image": "base",
                                                        "count": PER_SITE, "placement": {"site": site}})
        assert answer.status_code == 202, answer.text
        ids += [s["id"] for s in answer.json()["servers"]]

    def statuses() -> Counter[str]:
        return Counter(fleet.client.get(f"/v1/servers/{sid}").json()["status"] for sid in ids)

    assert wait_until(lambda: statuses()["active"] >= 15, 120), statuses()
    second = fleet.start_worker(concurrency=16)
    first.send_signal(signal.SIGKILL)  # kill -9 while servers are building
    first.wait(10)
    assert wait_until(lambda: statuses()["active"] == len(ids), 300, 1.0), statuses()
    assert second.poll() is None
    rows = {sid: fleet.client.get(f"/v1/servers/{sid}").json() for sid in ids}
    remote_ids = {r["remote_id"] for r in rows.values()}
    for site in sim.site_names():
        found = remote_servers(sim, site)
        marks = Counter(s.metadata.get("skyfleet_server") for s in found)
        assert [m for m, n in marks.items() if n > 1] == [], f"duplicates on {site}"
        assert [s.id for s in found if s.id not in remote_ids] == [], f"orphans on {site}"
        assert len(found) == PER_SITE
    with transaction(fleet.runtime.factory) as session:
        taken_over = session.scalar(select(func.count()).select_from(Task).where(
            Task.kind == "server.boot", Task.attempts >= 2)) or 0
    assert taken_over >= 1  # the kill did cut boots short: they were taken over, and found their servers
    print(f"{len(ids)} servers ACTIVE after kill -9 mid-boot ({taken_over} boot(s) taken over): "
          "0 duplicates, 0 orphans")
