"""Explicit CIDRs of declared networks declared from eight threads at once, all overlapping one
another (SQLite and PostgreSQL): exactly one declaration wins, the others get a 409 naming it;
outside any pool (the explicit-CIDR lock, then the project's declared networks) and inside one (the
pool's row lock, the reservation), and mixed with the pool's own allocations."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.addresses import pools
from skyfleet.domains.addresses.models import AddressAllocation
from skyfleet.domains.addresses.service import Caller
from skyfleet.domains.networks import address_space
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import SyncResource
from skyfleet.errors import Conflict

# all of them hold 10.30.0.0/26: any two overlap
OVERLAPPING = ["10.30.0.0/23", "10.30.0.0/24", "10.30.0.0/25", "10.30.0.0/26", "10.30.0.0/22", "10.30.0.0/24",
               "10.30.0.0/25", "10.30.0.0/23"]


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    made = make_session_factory(engine)
    with transaction(made) as session:
        for n in range(4):
            session.add(Site(id=f"s{n}", name=f"site-{n}", auth_public={}, auth_encrypted="x", availability="online"))
    yield made
    engine.dispose()


def declare_all(factory: sessionmaker[Session], cidrs: list[str], *, allow_overlap: bool) -> list[str]:
    """Each thread declares network n<i> with one CIDR on site s<i % 4>, as the API does: the guard,
    then the resource row, in one transaction."""
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(cidrs))

    def worker(i: int) -> None:
        site = f"s{i % 4}"
        start.wait()
        try:
            with transaction(factory) as session:
                now = utcnow()
                reserved = address_space.guard(session, cidrs={site: cidrs[i]}, project_id="p1", admin=False,
                                               allow_overlap=allow_overlap, resource_id=None, now=now)
                session.add(SyncResource(kind="network", name=f"n{i}-{cidrs[i]}", scope="p1", spec={}, placement={},
                                         options={"cidrs": {site: cidrs[i]}, "reservations": reserved,
                                                  "prefixes": {site: {"cidr": cidrs[i]}}}))
            result = f"ok {cidrs[i]}"
        except Conflict as exc:
            result = f"409 {exc.detail}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cidrs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == len(cidrs)
    return outcomes


def live(factory: sessionmaker[Session]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    with transaction(factory) as session:
        return [ipaddress.ip_network(c) for r in session.scalars(select(SyncResource))
                for c in (r.options.get("cidrs") or {}).values()]


def test_concurrent_declarations_outside_pools_let_one_win(factory: sessionmaker[Session]) -> None:
    outcomes = declare_all(factory, OVERLAPPING, allow_overlap=False)
    won = [o for o in outcomes if o.startswith("ok")]
    assert len(won) == 1, outcomes
    assert all(o.startswith("409") and "declared in Skyfleet" in o for o in outcomes if o not in won), outcomes
    assert len(live(factory)) == 1


def test_concurrent_reservations_in_a_pool_let_one_win(factory: sessionmaker[Session]) -> None:
    """allow_overlap skips the declared networks' part: the pool's lock alone keeps one reservation."""
    with transaction(factory) as session:
        pool_id = pools.create_pool(session, name="wan", description="", cidr="10.30.0.0/16", project=None,
                                    shared=False, caller=Caller("p1"), now=utcnow()).id
    outcomes = declare_all(factory, OVERLAPPING, allow_overlap=True)
    won = [o for o in outcomes if o.startswith("ok")]
    assert len(won) == 1, outcomes
    assert all("allocated from the address pool 'wan'" in o for o in outcomes if o not in won), outcomes
    with transaction(factory) as session:
        rows = list(session.scalars(select(AddressAllocation).where(AddressAllocation.pool_id == pool_id)))
    assert [r.cidr for r in rows] == [won[0].split()[1]]


def test_reservations_and_pool_allocations_never_overlap(factory: sessionmaker[Session]) -> None:
    """Explicit CIDRs reserved while the pool hands out prefixes from other threads: no two overlap."""
    with transaction(factory) as session:
        pool_id = pools.create_pool(session, name="wan", description="", cidr="10.40.0.0/22", project=None,
                                    shared=False, caller=Caller("p1"), now=utcnow()).id
    taken: list[str] = []

    def allocator() -> None:
        for _ in range(4):
            try:
                with transaction(factory) as session:
                    taken.append(pools.allocate(session, pool_id=pool_id, site_id="s0", prefix_length=24,
                                                caller=Caller("p1"), now=utcnow()).cidr)
            except Conflict:
                pass

    threads = [threading.Thread(target=allocator) for _ in range(2)]
    for thread in threads:
        thread.start()
    outcomes = declare_all(factory, ["10.40.1.0/24", "10.40.2.0/24", "10.40.2.0/25", "10.40.3.0/24"],
                           allow_overlap=True)
    for thread in threads:
        thread.join(120)
    with transaction(factory) as session:
        rows = [ipaddress.ip_network(r.cidr) for r in session.scalars(
            select(AddressAllocation).where(AddressAllocation.pool_id == pool_id))]
    assert all(not a.overlaps(b) for i, a in enumerate(rows) for b in rows[i + 1:]), rows
    assert sum(n.num_addresses for n in rows) <= 1024
    assert len([o for o in outcomes if o.startswith("ok")]) + len(taken) == len(rows), (outcomes, taken)
