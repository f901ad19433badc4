"""A periodic job is claimed by exactly one process per interval."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine

from skyfleet.db import migrate
from skyfleet.db.engine import make_session_factory, transaction
from skyfleet.domains.schedules.service import claim, run_now


def test_one_claim_per_interval(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    factory = make_session_factory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(factory) as s:
        assert claim(s, name="audit", interval=60, owner="a", now=now)
    with transaction(factory) as s:
        assert not claim(s, name="audit", interval=60, owner="b", now=now + timedelta(seconds=30))
    with transaction(factory) as s:
        assert claim(s, name="audit", interval=60, owner="b", now=now + timedelta(seconds=61))
    with transaction(factory) as s:
        run_now(s, name="audit", now=now + timedelta(seconds=62))
    with transaction(factory) as s:
        assert claim(s, name="audit", interval=60, owner="a", now=now + timedelta(seconds=62))
    engine.dispose()


def test_concurrent_claimers_never_both_win(db_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    factory = make_session_factory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(factory) as s:
        claim(s, name="job", interval=3600, owner="seed", now=now - timedelta(hours=2))

    def attempt(owner: int) -> bool:
        with transaction(factory) as s:
            return claim(s, name="job", interval=3600, owner=str(owner), now=now)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1
    engine.dispose()
