"""Engine and session factory, built by a function (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.private_files import private_file


def prepare_sqlite_file(url: str) -> None:
    """Create a SQLite database file with mode 0600 (in a 0700 directory when Skyfleet makes it)
    before SQLite does, so it is never world-readable; SQLite gives its -wal and -shm files the
    same mode. Other backends and in-memory databases are left alone."""
    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with settings that suit each backend."""
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_timeout", 10)
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = 5
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that is never committed: a read may compute a view with the same code that
    writes (e.g. folding finished tasks into bindings) and still leave no trace.

    Autoflush is off: the view's changes stay in memory. Flushed, they would take SQLite's write lock
    for a read, and an UPDATE of a row a worker deleted meanwhile would fail the read (StaleDataError).
    """
    session = factory()
    session.autoflush = False
    session.info["read_only"] = True
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def is_read_only(session: Session) -> bool:
    """Whether ``session`` is a :func:`read_only` view: code shared with writers skips its direct
    statements (``session.execute(delete(...))``) there, which autoflush being off does not stop."""
    return bool(session.info.get("read_only"))
