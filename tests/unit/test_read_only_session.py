"""A read-only view never writes: its in-memory changes are not flushed, so a row a worker deletes
meanwhile cannot fail the read, and SQLite's write lock is never taken for a GET."""

from __future__ import annotations

from sqlalchemy import select

from skyfleet.db import migrate
from skyfleet.db.engine import make_engine, make_session_factory, read_only, transaction
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import SyncResource


def test_a_view_that_changes_a_row_a_worker_deleted_still_reads(db_url: str) -> None:
    migrate.upgrade(db_url)
    factory = make_session_factory(make_engine(db_url))
    with transaction(factory) as session:
        session.add(SyncResource(id="r1", kind="keypair", name="k", scope="p", spec={}, placement={}))
        session.add(Site(id="s1", name="one", auth_public={}, auth_encrypted="x", availability="online"))
    with read_only(factory) as view:
        resource = view.get(SyncResource, "r1")
        assert resource is not None
        resource.state = "deleting"  # what folding computes for the view, never meant to be stored
        with transaction(factory) as worker:  # a worker removes the resource meanwhile
            worker.delete(worker.get(SyncResource, "r1"))
        names = view.scalars(select(Site.name)).all()  # a later query of the same view
        assert names == ["one"]
    with read_only(factory) as again:
        assert again.get(SyncResource, "r1") is None
