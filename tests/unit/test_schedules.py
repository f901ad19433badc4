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


def test_a_run_claimed_late_keeps_the_fixed_rate(db_url: str) -> None:
    """The next run is due one interval after this one was due, not after it was claimed; a run claimed
    more than an interval late is not caught up."""
    from sqlalchemy import select

    from skyfleet.domains.schedules.models import Schedule

    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    factory = make_session_factory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(factory) as s:
        assert claim(s, name="drift", interval=60, owner="a", now=now)
    with transaction(factory) as s:  # claimed 12 s late (the process was busy)
        assert claim(s, name="drift", interval=60, owner="a", now=now + timedelta(seconds=72))
    with transaction(factory) as s:
        assert s.scalar(select(Schedule.next_run_at)) == now + timedelta(seconds=120)
    with transaction(factory) as s:
        assert not claim(s, name="drift", interval=60, owner="a", now=now + timedelta(seconds=119))
    with transaction(factory) as s:  # 200 s late: no burst of catch-up runs
        assert claim(s, name="drift", interval=60, owner="a", now=now + timedelta(seconds=320))
    with transaction(factory) as s:
        assert s.scalar(select(Schedule.next_run_at)) == now + timedelta(seconds=380)
    engine.dispose()


def test_a_long_job_does_not_hold_back_another(db_url: str) -> None:
    """A job that runs for seconds (a big audit) leaves the other jobs on their own rate."""
    import threading
    import time

    from skyfleet.reconcile.scheduler import PeriodicJob, Scheduler

    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    factory = make_session_factory(engine)
    release = threading.Event()
    long_runs: list[float] = []
    quick_runs: list[float] = []

    def long_job() -> None:
        long_runs.append(time.monotonic())
        release.wait(10)

    jobs = [PeriodicJob("long", 0.2, long_job), PeriodicJob("quick", 0.2, lambda: quick_runs.append(time.monotonic()))]
    scheduler = Scheduler(factory, jobs, tick=0.05)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(quick_runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(quick_runs) >= 3, "the quick job waited for the long one"
        assert len(long_runs) == 1, "a job still running was started again"
    finally:
        release.set()
        scheduler.stop(10)
        engine.dispose()


def test_jobs_of_one_group_take_turns(db_url: str) -> None:
    """The incremental and the full inventory refresh (one group) never run at once in a process."""
    import threading
    import time

    from skyfleet.reconcile.scheduler import PeriodicJob, Scheduler

    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    factory = make_session_factory(engine)
    lock = threading.Lock()
    overlaps: list[str] = []
    runs: list[str] = []

    def job(name: str) -> None:
        if not lock.acquire(blocking=False):
            overlaps.append(name)
            return
        try:
            runs.append(name)
            time.sleep(0.3)
        finally:
            lock.release()

    jobs = [PeriodicJob("incremental", 0.1, lambda: job("incremental"), group="inventory"),
            PeriodicJob("full", 0.1, lambda: job("full"), group="inventory")]
    scheduler = Scheduler(factory, jobs, tick=0.05)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(set(runs)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop(10)
        engine.dispose()
    assert set(runs) == {"incremental", "full"}
    assert overlaps == []
