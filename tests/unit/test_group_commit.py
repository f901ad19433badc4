"""Group commit (``db.group_commit``): writes of many threads share transactions, each caller gets its own
result once committed, and a failing write fails alone (the others of its batch are committed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.db.group_commit import GroupCommit


def factory(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return make_session_factory(engine)


def insert(n: int) -> Callable[[Session], int]:
    def write(session: Session) -> int:
        if n == 13:
            raise ValueError("unlucky")
        session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        return n * 2
    return write


def test_many_threads_share_transactions_and_a_bad_write_fails_alone(tmp_path: Path) -> None:
    made = factory(tmp_path)
    group = GroupCommit(made)
    results: dict[int, object] = {}
    start = threading.Barrier(40)

    def worker(n: int) -> None:
        start.wait()
        try:
            results[n] = group.run(insert(n))
        except ValueError as exc:
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(results.pop(13), ValueError)
    assert results == {n: n * 2 for n in range(40) if n != 13}
    with transaction(made) as session:
        assert sorted(session.scalars(text("SELECT n FROM t"))) == [n for n in range(40) if n != 13]
    assert group.batches < 39  # some writes shared a transaction


def test_a_write_is_committed_when_run_returns(tmp_path: Path) -> None:
    made = factory(tmp_path)
    group = GroupCommit(made)
    assert group.run(insert(1)) == 2
    with transaction(made) as session:
        assert list(session.scalars(text("SELECT n FROM t"))) == [1]
    with pytest.raises(ValueError):
        group.run(insert(13))
