"""A sharded health audit: several processes share one cycle, every site probed exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.reconcile.health import in_shard
from skyfleet.reconcile.scheduler import Scheduler
from tests.support import FakeProber, site_body


def test_shards_partition_the_sites() -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]
    owners = Counter(sum(1 for i in range(4) if in_shard(site, (i, 4))) for site in ids)
    assert owners == Counter({1: 500})
    assert all(in_shard(site, None) for site in ids)


def test_two_processes_share_one_sharded_cycle(runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    prober = FakeProber()
    first = runtime_factory(db_url, prober, audit_shards=4)
    second = runtime_factory(db_url, prober, audit_shards=4, auto_migrate=False)
    with TestClient(create_app(first, start_workers=False)) as client:
        for i in range(40):
            assert client.post("/v1/sites?probe=false", json=site_body(f"s{i:02d}")).status_code == 201
    schedulers = [Scheduler(rt.factory, rt.audit_jobs()) for rt in (first, second)]
    with ThreadPoolExecutor(2) as pool:
        ran = list(pool.map(lambda s: s.run_due(), schedulers))
    assert sorted(name for names in ran for name in names) == [f"health-audit/{i}" for i in range(4)]
    assert Counter(prober.calls) == Counter({f"http://s{i:02d}.example.test:5000/v3": 1 for i in range(40)})
    assert schedulers[0].run_due() == [] and schedulers[1].run_due() == []  # nothing due until next interval
