"""Group commit (``db.group_commit``): writes of many threads share transactions, each caller gets its own
result once committed, and a failing write fails alone (the others of its batch are committed)."""

from __future__ import annotations

import threading
import time
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


def run_held(group: GroupCommit, numbers: list[int]) -> dict[int, object]:
    """Hold the writer in a first write until every other write is queued, then let it go: the queued
    writes meet in one batch whatever the host's load."""
    inside, release = threading.Event(), threading.Event()
    results: dict[int, object] = {}

    def hold(session: Session) -> int:
        inside.set()
        release.wait(30)
        return -1

    def worker(n: int) -> None:
        try:
            results[n] = group.run(insert(n))
        except ValueError as exc:
            results[n] = exc

    first = threading.Thread(target=lambda: results.__setitem__(-1, group.run(hold)))
    first.start()
    assert inside.wait(30)
    threads = [threading.Thread(target=worker, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while group._queue.qsize() < len(numbers) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in [first, *threads]:
        thread.join(30)
    return results


def test_writes_waiting_together_share_one_transaction(tmp_path: Path) -> None:
    made = factory(tmp_path)
    group = GroupCommit(made)
    results = run_held(group, list(range(100, 140)))
    assert results == {-1: -1, **{n: n * 2 for n in range(100, 140)}}
    assert group.batches == 2  # the held write, then the 40 that waited: one transaction
    with transaction(made) as session:
        assert sorted(session.scalars(text("SELECT n FROM t"))) == list(range(100, 140))


def test_a_bad_write_fails_alone(tmp_path: Path) -> None:
    made = factory(tmp_path)
    group = GroupCommit(made)
    results = run_held(group, list(range(20)))
    assert isinstance(results.pop(13), ValueError)
    assert results == {-1: -1, **{n: n * 2 for n in range(20) if n != 13}}
    with transaction(made) as session:
        assert sorted(session.scalars(text("SELECT n FROM t"))) == [n for n in range(20) if n != 13]


def test_a_write_is_committed_when_run_returns(tmp_path: Path) -> None:
    made = factory(tmp_path)
    group = GroupCommit(made)
    assert group.run(insert(1)) == 2
    with transaction(made) as session:
        assert list(session.scalars(text("SELECT n FROM t"))) == [1]
    with pytest.raises(ValueError):
        group.run(insert(13))
