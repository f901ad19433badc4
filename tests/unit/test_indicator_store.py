"""The indicator store on SQLite and PostgreSQL: bucketing in SQL, the bounded answer, the sample
rate, the retention's prune, and the samples a probe result makes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from skyfleet.db import migrate
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.indicators.models import IndicatorSample
from skyfleet.domains.indicators.service import Sample, SeriesQuery
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import ProbeResult, ServiceProbe
from skyfleet.errors import Unprocessable
from skyfleet.reconcile import indicators as sampling

T0 = 1_800_000_000  # a multiple of 300 (and of 3600)


@pytest.fixture
def factory(db_url: str):  # type: ignore[no-untyped-def]
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    made = make_session_factory(engine)
    with transaction(made) as session:
        for sid, name in (("s1", "one"), ("s2", "two")):
            session.add(Site(id=sid, name=name, auth_public={}, auth_encrypted="x", availability="online"))
    yield made
    engine.dispose()


def test_buckets_average_in_sql_and_raw_points_stay_raw(factory) -> None:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        # s1: one sample a minute for 10 minutes, values 0..9; s2: one sample
        indicators.write(session, [Sample("s1", "audit.latency_ms", T0 + 60 * i, float(i)) for i in range(10)])
        indicators.write(session, [Sample("s2", "audit.latency_ms", T0 + 30, 7.0),
                                   Sample("s1", "capacity.vcpus", T0, 64.0)])
    with transaction(factory) as session:
        raw = indicators.series(session, query=SeriesQuery(since=T0, until=T0 + 600, names=("audit.latency_ms",)))
        assert [(s.site, len(s.points)) for s in raw] == [("one", 10), ("two", 1)]
        assert raw[0].points[3] == (T0 + 180, 3.0) and raw[0].unit == "ms"
        stepped = indicators.series(session, query=SeriesQuery(
            since=T0, until=T0 + 600, step=300, site_ids=("s1",), names=indicators.expand(["audit.*"])))
        assert [(s.name, s.points) for s in stepped] == [("audit.latency_ms", [(T0, 2.0), (T0 + 300, 7.0)])]
        every = indicators.series(session, query=SeriesQuery(since=T0, until=T0 + 600, step=3600))
        assert {(s.site, s.name): s.points for s in every} == {
            ("one", "audit.latency_ms"): [(T0, 4.5)], ("one", "capacity.vcpus"): [(T0, 64.0)],
            ("two", "audit.latency_ms"): [(T0, 7.0)]}
        until_excluded = indicators.series(session, query=SeriesQuery(since=T0 + 60, until=T0 + 120))
        assert [s.points for s in until_excluded] == [[(T0 + 60, 1.0)]]
        with pytest.raises(Unprocessable, match="more than 5 points"):
            indicators.series(session, query=SeriesQuery(since=T0, until=T0 + 600), max_points=5)


def test_sample_rate_and_retention(factory) -> None:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        indicators.write(session, [Sample("s1", "audit.duration_ms", T0, 1.0)])
        assert indicators.due_sites(session, site_ids=["s1", "s2"], name="audit.duration_ms", now=T0 + 100,
                                    interval=300) == {"s2"}
        assert indicators.due_sites(session, site_ids=["s1", "s2"], name="audit.duration_ms", now=T0 + 300,
                                    interval=300) == {"s1", "s2"}
        assert indicators.due_sites(session, site_ids=["s1"], name="audit.duration_ms", now=T0, interval=0) == {"s1"}
        indicators.write(session, [Sample("s2", "audit.duration_ms", T0 + 10 * i, 1.0) for i in range(50)])
    now = datetime.fromtimestamp(T0 + 3600 + 250, UTC)  # retention 3600 s: samples before T0+250 go
    assert sampling.prune(factory, retention=3600, now=now) == 1 + 25
    with transaction(factory) as session:
        left = session.scalar(select(func.min(IndicatorSample.ts)))
        assert left == T0 + 250 and session.scalar(select(func.count()).select_from(IndicatorSample)) == 25
    assert sampling.prune(factory, retention=3600, now=now) == 0


def test_probe_samples_per_service_and_for_an_unreachable_site() -> None:
    result = ProbeResult(reachable=True, latency_ms=12.5, services=[
        ServiceProbe(type="compute", endpoint="http://x", ok=True, latency_ms=3.25),
        ServiceProbe(type="network", endpoint="http://y", ok=False, error="HTTP 503", latency_ms=8.0)])
    got = {s.name: s.value for s in sampling.probe_samples(sampling.Probed("s1", result, 40.0, ()), T0)}
    assert got == {"audit.duration_ms": 40.0, "audit.latency_ms": 12.5, "api.compute.latency_ms": 3.25,
                   "api.compute.error": 0.0, "api.network.latency_ms": 8.0, "api.network.error": 1.0}
    assert all(name in indicators.CATALOG for name in got)
    down = ProbeResult(reachable=False, error="cannot connect", latency_ms=2.0)
    got = {s.name: s.value for s in sampling.probe_samples(
        sampling.Probed("s1", down, 2.5, ("identity", "compute")), T0)}
    assert got == {"audit.duration_ms": 2.5, "audit.latency_ms": 2.0, "api.identity.error": 1.0,
                   "api.compute.error": 1.0}
    never = sampling.probe_samples(sampling.Probed("s1", down, 2.5, ()), T0)
    assert [s.name for s in never if s.name.startswith("api.")] == ["api.identity.error"]
