"""The inventory store on SQLite and PostgreSQL: full diffs, incremental changes, deletions, events,
and the filtered list and counts the API serves."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.events.models import Event
from skyfleet.domains.inventory import queries
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import Record


def server(rid: str, status: str = "ACTIVE", project: str = "p1", ip: str = "10.0.0.1") -> Record:
    return Record(kind="servers", remote_id=rid, project_id=project, name=f"vm-{rid}", status=status,
                  ips=(ip,), data={"flavor": "1"})


def test_full_then_incremental_then_deletions(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    now = utcnow()
    with transaction(factory) as session:
        session.add(Site(id="s1", name="one", auth_public={}, auth_encrypted="x", availability="online"))
    site = inventory.SiteRef("s1", "one")
    with transaction(factory) as session:
        first = inventory.apply_records(session, site=site, kind="servers", complete=True, now=now, emit=False,
                                        records=[server("a"), server("b", project="p2", ip="10.0.0.2")])
        assert (first.created, first.events) == (2, 0)
    with transaction(factory) as session:  # incremental: a goes ERROR, c appears, b is deleted
        changed = inventory.apply_records(
            session, site=site, kind="servers", complete=False, now=now + timedelta(seconds=5),
            records=[server("a", status="ERROR"), server("c"), server("b", status="DELETED", project="p2")])
        assert (changed.created, changed.updated, changed.deleted, changed.events) == (1, 1, 1, 3)
    with transaction(factory) as session:
        again = inventory.apply_records(session, site=site, kind="servers", complete=False, now=now,
                                        records=[server("a", status="ERROR")])
        assert (again.unchanged, again.updated, again.events) == (1, 0, 0)
        rows, _ = queries.list_items(session, filters=queries.ItemFilter(kind="servers", project_id="p1",
                                                                         status=("ERROR",)),
                                     sort="name", limit=10, offset=0)
        assert [r.item.remote_id for r in rows] == ["a"]
        by_ip, _ = queries.list_items(session, filters=queries.ItemFilter(kind="servers", ip="10.0.0.1"),
                                      sort="-name", limit=1, offset=0)
        assert [r.item.remote_id for r in by_ip] == ["c"]
        kinds = {e.kind for e in session.scalars(select(Event).where(Event.kind.like("inventory.%")))}
        assert kinds == {"inventory.status", "inventory.created", "inventory.deleted"}
    with transaction(factory) as session:  # a full listing without c deletes c
        full = inventory.apply_records(session, site=site, kind="servers", complete=True, now=now,
                                       records=[server("a", status="ERROR")])
        assert (full.deleted, full.unchanged) == (1, 1)
        assert queries.counts(session, project_id="p1") == [("s1", "servers", "ERROR", 1)]
        assert queries.counts(session, project_id="p2") == []
    engine.dispose()
