"""Helpers for the reconcile engine tests: register simulated sites, submit an operation, wait for it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import Operation, Task
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.reconcile.policy import FakeClock
from skyfleet.secrets import SecretBox

PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-test")


def fresh_clock() -> FakeClock:
    """A fake clock a minute ahead of the real one. Submitted tasks are stamped with real time, so
    they are due at once on this clock however long a loaded machine takes between creating the
    clock and submitting (one second was not enough under CI load on PostgreSQL)."""
    return FakeClock(utcnow() + timedelta(seconds=60))


def sim_auth(sim: Any, name: str) -> dict[str, Any]:
    entry = sim.cloud(name)
    return {**entry["auth"], "region_name": entry["region_name"], "interface": "public"}


def register_sites(factory: sessionmaker[Session], box: SecretBox, sim: Any,
                   names: Sequence[str] | None = None) -> list[operations.SiteRef]:
    """Register simulated sites (online, without probing) in one transaction."""
    refs = []
    with transaction(factory) as session:
        for name in names or sim.site_names():
            site = sites.create_site(session, box=box, data=SiteCreate.model_validate(
                {"name": name, "auth": sim_auth(sim, name)}))
            site.availability = "online"
            refs.append(operations.SiteRef(site.id, site.name))
    return refs


def submit(factory: sessionmaker[Session], kind: str, refs: Sequence[operations.SiteRef],
           payload: dict[str, Any] | None = None, project_id: str | None = "p1") -> str:
    with transaction(factory) as session:
        return operations.submit(session, kind=kind, targets=refs, payload=payload or {}, user_id="u1",
                                 project_id=project_id, now=utcnow()).id


def tasks_of(factory: sessionmaker[Session], operation_id: str) -> list[Task]:
    with transaction(factory) as session:
        return list(session.scalars(select(Task).where(Task.operation_id == operation_id)))


def operation_state(factory: sessionmaker[Session], operation_id: str) -> str:
    with transaction(factory) as session:
        operation = session.get(Operation, operation_id)
        assert operation is not None
        return operation.state


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the database may be down on purpose
            pass
        time.sleep(step)
    return predicate()


def set_availability(factory: sessionmaker[Session], names: Sequence[str], availability: str) -> None:
    with transaction(factory) as session:
        session.execute(update(Site).where(Site.name.in_(names)).values(availability=availability)
                        .execution_options(synchronize_session=False))


def observe_inventory(runtime: Any) -> None:
    """What a fleet's periodic inventory refresh would have stored by now (flavors, images, zones,
    hypervisors): placement decides from the store, so a boot test reads the sites first."""
    from skyfleet.reconcile.inventory import refresh_fleet

    refresh_fleet(runtime.factory, box=runtime.box, concurrency=8, timeout=5, full=True)


Fleet = tuple[Any, Any, Any, Any]  # (Simulator, Runtime, TestClient, Engine)


@contextmanager
def simulated_fleet(runtime_factory: Callable[..., Any], db_url: str, *, sites: int = 3, site_timeout: float = 5.0,
                    **settings: Any) -> Iterator[Fleet]:
    """A started simulator of ``sites`` registered (online) in a runtime built with ``settings``, the API
    without its workers, and an engine the test runs step by step."""
    from fastapi.testclient import TestClient

    from skyfleet.api.app import create_app
    from skyfleet.reconcile.engine import Engine, EngineConfig
    from skyfleet.simulator import Simulator

    sim = Simulator(sites=sites)
    sim.start()
    try:
        runtime = runtime_factory(db_url, **settings)
        register_sites(runtime.factory, runtime.box, sim)
        engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=site_timeout))
        with TestClient(create_app(runtime, start_workers=False)) as client:
            yield sim, runtime, client, engine
    finally:
        sim.stop()
