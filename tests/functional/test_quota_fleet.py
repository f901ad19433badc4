"""Global quota over 100 simulated sites, and a site joining: the sum of the site limits stays the
global limit and every site gets its share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.schemas import QuotaUpdate
from skyfleet.reconcile import quota as rounds
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites


@pytest.fixture(scope="module")
def fleet100() -> Iterator[Simulator]:
    simulator = Simulator(sites=100)
    simulator.start()
    yield simulator
    simulator.stop()


def cores(sim: Simulator, site: str) -> int | None:
    pid = next(p["id"] for p in sim.state(site).keystone.projects.values() if p["name"] == "demo")
    value = sim.state(site).nova.quotas.get(pid, {}).get("cores")
    return None if value is None else int(value)


def converge(runtime: Runtime, engine: Engine) -> None:
    """Rounds until one writes nothing (raises wait a round for the reductions they depend on)."""
    for i in range(6):
        with transaction(runtime.factory) as session:
            out = rounds.round_(session, home_auth_url="", now=utcnow())
        engine.run_until_idle(limit=128)
        if i >= 1 and not out["apply"]:
            break


def test_hundred_sites_then_one_joins(fleet100: Simulator, runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    register_sites(runtime.factory, runtime.box, fleet100)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_rate=1000, site_burst=100))
    with transaction(runtime.factory) as session:
        quotas.set_quota(session, project_id="g", data=QuotaUpdate(limits={"cores": 1000}, project_name="demo",
                                                                    policy="even"))
    converge(runtime, engine)
    names = fleet100.site_names()
    assert [cores(fleet100, n) for n in names] == [10] * 100
    joined = fleet100.add_site()
    register_sites(runtime.factory, runtime.box, fleet100, [joined])
    converge(runtime, engine)
    limits = [cores(fleet100, n) for n in [*names, joined]]
    assert sum(v or 0 for v in limits) == 1000 and cores(fleet100, joined) in (9, 10)
