"""Multi-stage work continues by itself: a Kingbird os-sync copy job (read the source, then copy to the
targets) is created through the API and the test then waits as a user waits, looking only at the
target sites through openstacksdk, never at Skyfleet's job routes (reads must not move work on).
Also: the process stops between the two stages and a new runtime on the same database continues, and
a desired resource's outcomes (bindings, a finished delete) are recorded when its operation settles."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import stages
from skyfleet.domains.sync import jobs
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, register_sites, tasks_of

URL = "/v1.0/8f3a4a0e5b6c4d2e9f1a2b3c4d5e6f70/os-sync"  # a project id (noauth: any, Kingbird wants an id)
SLOW_POLL = {"engine_poll_interval": 60, "periodic_jobs": False}  # no poll, no audit: only the engine


@pytest.fixture
def fleet() -> Iterator[Simulator]:
    sim = Simulator(sites=3)
    sim.start()
    yield sim
    sim.stop()


def _sdk(sim: Simulator, site: str) -> Any:
    import openstack

    cloud = sim.cloud(site)
    return openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"), auth_type="password")


def _copied(sim: Simulator, sites: list[str], name: str) -> bool:
    for site in sites:
        found = _sdk(sim, site).compute.find_keypair(name, ignore_missing=True)
        if found is None or found.public_key != PUBLIC_KEY:
            return False
    return True


def wait_for_copies(sim: Simulator, sites: list[str], name: str, timeout: float = 20) -> float:
    """Seconds until every target site has the keypair, asked of the sites themselves."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _copied(sim, sites, name):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{name} did not reach {sites} within {timeout}s")


def _create_job(client: TestClient, source: str, targets: list[str], name: str) -> str:
    made = client.post(URL, json={"resource_set": {"resource_type": "keypair", "resources": [name],
                                                   "source": source, "target": targets, "force": "False"}})
    assert made.status_code == 200, made.text
    assert made.json()["job_status"]["status"] == jobs.IN_PROGRESS
    job_id: str = made.json()["job_status"]["id"]
    return job_id


def test_copy_job_reaches_the_targets_with_no_reader(fleet: Simulator,
                                                     runtime_factory: Callable[..., Runtime]) -> None:
    sim = fleet
    a, b, c = sim.site_names()
    runtime = runtime_factory(**SLOW_POLL)
    register_sites(runtime.factory, runtime.box, sim)
    _sdk(sim, a).compute.create_keypair(name="stage-key", public_key=PUBLIC_KEY)
    with TestClient(create_app(runtime, start_workers=True)) as client:
        _create_job(client, a, [b, c], "stage-key")
        seconds = wait_for_copies(sim, [b, c], "stage-key")
    assert seconds < 10  # the copy stage was started by the read settling, not by a 60 s poll


@pytest.mark.parametrize("crash", ["after-the-read", "before-the-continuation"])
def test_a_new_runtime_continues_a_job_stopped_between_stages(
        fleet: Simulator, runtime_factory: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch,
        crash: str) -> None:
    sim = fleet
    a, b, c = sim.site_names()
    first = runtime_factory(**SLOW_POLL)
    register_sites(first.factory, first.box, sim)
    _sdk(sim, a).compute.create_keypair(name="restart-key", public_key=PUBLIC_KEY)
    with TestClient(create_app(first, start_workers=False)) as client:
        job_id = _create_job(client, a, [b, c], "restart-key")
    engine = Engine(first.factory, box=first.box, config=EngineConfig(site_timeout=5))
    if crash == "before-the-continuation":
        # The read settles but its continuation does not run (a process without it, or one that
        # failed): only the recovery scan of the next runtime can start the copies.
        monkeypatch.delitem(stages.REGISTRY, jobs.JOB_KIND)
    [read] = engine.lease(10)
    assert read.leased.kind == "sync.read"
    assert engine.run(read).state == "succeeded"
    assert [t.kind for t in tasks_of(first.factory, job_id)] == ["sync.read"]
    first.close()  # the process stops between the stages
    monkeypatch.undo()
    assert not _copied(sim, [b, c], "restart-key")

    second = runtime_factory(**SLOW_POLL)
    with TestClient(create_app(second, start_workers=True)):
        wait_for_copies(sim, [b, c], "restart-key")


def test_sync_outcomes_are_recorded_when_the_operation_settles_not_when_read(
        fleet: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    sim = fleet
    runtime = runtime_factory(**SLOW_POLL)
    register_sites(runtime.factory, runtime.box, sim)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))

    def stored() -> tuple[list[SyncResource], dict[str, tuple[str, bool]]]:
        with transaction(runtime.factory) as session:
            resources = list(session.scalars(select(SyncResource)))
            bindings = {b.site_name: (b.status, b.owned) for b in session.scalars(select(SyncBinding))}
        return resources, bindings

    with TestClient(create_app(runtime, start_workers=False)) as client:
        client.post("/v1/keypairs", json={"spec": {"name": "settled-key", "public_key": PUBLIC_KEY}})
        engine.run_until_idle()
        assert stored()[1] == {name: ("in-sync", True) for name in sim.site_names()}  # no one read it
        assert client.delete("/v1/keypairs/settled-key").status_code == 202
        before = stored()
        engine.run_until_idle()
        assert stored() == ([], {})  # the delete finished in every site and the resource is gone
        assert all(not _copied(sim, [name], "settled-key") for name in sim.site_names())
    assert before[0] and before[1]
