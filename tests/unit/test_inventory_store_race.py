"""Two refreshes storing one site at once (the incremental and the full, in two processes) both succeed:
the second waits for the first and diffs against what it stored, instead of inserting the same rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import Record
from skyfleet.reconcile.inventory import Observed, Target, store_site


@pytest.fixture
def factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(pg_url)
    engine = make_engine(pg_url)
    made = make_session_factory(engine)
    with transaction(made) as session:
        session.add(Site(id="s1", name="site-1", auth_public={}, auth_encrypted="x", availability="online"))
    yield made
    engine.dispose()


def observed() -> Observed:
    servers = [Record(kind="servers", remote_id=f"vm-{i}", project_id="p1", name=f"web-{i}", status="ACTIVE",
                      data={}) for i in range(3)]
    return Observed(full=True, complete={"servers": servers})


def test_two_first_refreshes_of_one_site_at_once_both_store(factory: sessionmaker[Session]) -> None:
    target = Target(site=inventory.SiteRef("s1", "site-1"), auth={}, full=True, cursors={})
    first = factory()
    store_site(first, target, observed(), utcnow())  # stored, not committed yet
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with transaction(factory) as session:
                store_site(session, target, observed(), utcnow())
        except BaseException as exc:  # the assertion below reports it
            failures.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive(), "the second refresh did not wait for the first one's transaction"
    first.commit()
    first.close()
    thread.join(30)
    assert failures == []
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(InventoryItem)) == 3
