"""Global IPAM: the first free aligned prefix (checked against brute force), random sequences of
takes and releases (in memory and through the store) that never leave two live prefixes
overlapping and give released room back, and allocations from several threads at once that never
overlap and end in a clear 409 when the pool is exhausted (SQLite and PostgreSQL)."""

from __future__ import annotations

import ipaddress
import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.addresses import pools
from skyfleet.domains.addresses.models import AddressAllocation
from skyfleet.domains.addresses.service import Caller
from skyfleet.domains.sites.models import Site
from skyfleet.errors import Conflict, Forbidden, Invalid

ADMIN, TENANT = Caller(None), Caller("p1")


def test_first_free_skips_taken_ranges_and_keeps_alignment() -> None:
    pool = ipaddress.ip_network("10.0.0.0/16")

    def span(cidr: str) -> tuple[int, int]:
        net = ipaddress.ip_network(cidr)
        return int(net.network_address), int(net.broadcast_address)

    assert str(pools.first_free(pool, [], 24)) == "10.0.0.0/24"
    assert str(pools.first_free(pool, [span("10.0.0.0/24")], 24)) == "10.0.1.0/24"
    assert str(pools.first_free(pool, [span("10.0.0.0/25")], 24)) == "10.0.1.0/24"  # aligned, not .128
    assert str(pools.first_free(pool, [span("10.0.0.0/25")], 25)) == "10.0.0.128/25"
    assert str(pools.first_free(pool, [span("10.0.0.0/24"), span("10.0.2.0/24")], 24)) == "10.0.1.0/24"
    assert pools.first_free(pool, [span("10.0.0.0/16")], 30) is None
    assert pools.first_free(ipaddress.ip_network("10.0.0.0/24"), [span("10.0.0.0/25")], 24) is None
    v6 = pools.first_free(ipaddress.ip_network("fd00:abcd::/48"), [span("fd00:abcd::/64")], 64)
    assert str(v6) == "fd00:abcd:0:1::/64"


@settings(max_examples=200)
@given(st.lists(st.integers(22, 28), max_size=40))
def test_a_sequence_of_allocations_never_overlaps_and_fills_the_pool(lengths: list[int]) -> None:
    pool = ipaddress.ip_network("10.0.0.0/20")
    taken: list[tuple[int, int]] = []
    for length in lengths:
        found = pools.first_free(pool, sorted(taken), length)
        free_somewhere = any(all(not (int(c.network_address) <= b and a <= int(c.broadcast_address))
                                 for a, b in taken) for c in pool.subnets(new_prefix=length))
        assert (found is not None) == free_somewhere  # exhausted only when no aligned prefix is free
        if found is not None:
            assert found.subnet_of(pool) and found.prefixlen == length  # type: ignore[arg-type]
            first, last = int(found.network_address), int(found.broadcast_address)
            assert all(last < a or first > b for a, b in taken)
            taken.append((first, last))


def _free_somewhere(pool: ipaddress.IPv4Network, taken: list[tuple[int, int]], length: int) -> bool:
    """Brute force: some aligned prefix of ``length`` in ``pool`` overlaps none of ``taken``."""
    return any(all(not (int(c.network_address) <= b and a <= int(c.broadcast_address)) for a, b in taken)
               for c in pool.subnets(new_prefix=length))


def _disjoint(networks: list[ipaddress.IPv4Network]) -> bool:
    ordered = sorted(networks, key=lambda n: int(n.network_address))
    return all(a.broadcast_address < b.network_address for a, b in itertools.pairwise(ordered))


# An operation: ("take", prefix length) or ("release", which live prefix, modulo how many there are)
OPERATIONS = st.lists(st.one_of(st.tuples(st.just("take"), st.integers(22, 26)),
                                st.tuples(st.just("release"), st.integers(0, 1000))), max_size=60)


@settings(max_examples=300)
@given(OPERATIONS)
def test_takes_and_releases_never_overlap_and_releases_make_room(operations: list[tuple[str, int]]) -> None:
    pool = ipaddress.ip_network("10.0.0.0/22")
    live: list[ipaddress.IPv4Network] = []
    for op, value in operations:
        taken = sorted((int(n.network_address), int(n.broadcast_address)) for n in live)
        if op == "take":
            found = pools.first_free(pool, taken, value)
            assert (found is not None) == _free_somewhere(pool, taken, value)
            if found is not None:
                assert isinstance(found, ipaddress.IPv4Network) and found.subnet_of(pool)
                live.append(found)
        elif live:
            gone = live.pop(value % len(live))
            taken = sorted((int(n.network_address), int(n.broadcast_address)) for n in live)
            again = pools.first_free(pool, taken, gone.prefixlen)
            assert again is not None and int(again.network_address) <= int(gone.network_address)  # room again
        assert _disjoint(live)


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


def test_concurrent_allocations_never_overlap_and_end_in_409(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        pool = pools.create_pool(session, name="wan", description="", cidr="10.200.0.0/20", project=None,
                                 shared=True, caller=ADMIN, now=utcnow())
        pool_id = pool.id
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(6):
            length = 24 if (n + i) % 3 else 23  # mixed lengths: a /23 must not straddle /24s
            try:
                with transaction(factory) as session:
                    row = pools.allocate(session, pool_id=pool_id, site_id=f"s{n % 4}", prefix_length=length,
                                         caller=TENANT, now=utcnow())
                    result = row.cidr
            except Conflict as exc:
                result = f"409 {exc.detail}"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 48
    with transaction(factory) as session:
        rows = list(session.scalars(select(AddressAllocation).where(AddressAllocation.pool_id == pool_id)))
    networks = sorted((ipaddress.ip_network(r.cidr) for r in rows), key=lambda n: int(n.network_address))
    assert all(not a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])
    assert sum(n.num_addresses for n in networks) == 4096  # /20 = 16 /24s: full, nothing lost
    refused = [o for o in outcomes if o.startswith("409")]
    assert len(refused) == 48 - len(rows) and all("no free /2" in o for o in refused)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPERATIONS)
def test_takes_and_releases_through_the_store(factory: sessionmaker[Session],
                                              operations: list[tuple[str, int]]) -> None:
    """The same sequences through ``allocate`` and ``release``: the store never holds two overlapping
    live prefixes, refuses only when no aligned prefix is free, and a release is handed out again."""
    caller = Caller(f"p-{uuid.uuid4().hex[:12]}")  # a pool of its own per example
    with transaction(factory) as session:
        pool = pools.create_pool(session, name="prop", description="", cidr="10.0.0.0/22", project=None,
                                 shared=False, caller=caller, now=utcnow())
        pool_id, network = pool.id, ipaddress.ip_network(pool.cidr)
    live: dict[int, ipaddress.IPv4Network] = {}
    for op, value in operations:
        if op == "take":
            taken = sorted((int(n.network_address), int(n.broadcast_address)) for n in live.values())
            try:
                with transaction(factory) as session:
                    row = pools.allocate(session, pool_id=pool_id, site_id="s1", prefix_length=value,
                                         caller=caller, now=utcnow())
                    live[row.id] = ipaddress.IPv4Network(row.cidr)
            except Conflict:
                assert not _free_somewhere(network, taken, value)  # type: ignore[arg-type]
        elif live:
            allocation_id = sorted(live)[value % len(live)]
            gone = live.pop(allocation_id)
            with transaction(factory) as session:
                pools.release(session, pool=pools.get_pool(session, ref=pool_id, caller=caller),
                              allocation_id=allocation_id, caller=caller)
            with transaction(factory) as session:  # the room is there again: the same length fits
                again = pools.allocate(session, pool_id=pool_id, site_id="s2", prefix_length=gone.prefixlen,
                                       caller=caller, now=utcnow())
                live[again.id] = ipaddress.IPv4Network(again.cidr)
            assert int(live[again.id].network_address) <= int(gone.network_address)
        with transaction(factory) as session:
            stored = [ipaddress.IPv4Network(c) for c in session.scalars(
                select(AddressAllocation.cidr).where(AddressAllocation.pool_id == pool_id))]
        assert sorted(stored) == sorted(live.values()) and _disjoint(stored)


def test_pool_rules(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with transaction(factory) as session:
        mine = pools.create_pool(session, name="mine", description="", cidr="fd00:abcd::/48", project=None,
                                 shared=False, caller=TENANT, now=now)
        assert mine.project_id == "p1" and mine.ip_version == 6
        with pytest.raises(Forbidden):
            pools.create_pool(session, name="x", description="", cidr="10.0.0.0/8", project=None, shared=True,
                              caller=TENANT, now=now)
        with pytest.raises(Conflict, match="overlaps the address pool 'mine'"):
            pools.create_pool(session, name="y", description="", cidr="fd00:abcd:0:100::/56", project=None,
                              shared=False, caller=TENANT, now=now)
        with pytest.raises(Invalid, match="did you mean"):
            pools.create_pool(session, name="z", description="", cidr="10.0.0.1/8", project=None, shared=False,
                              caller=TENANT, now=now)
        pool_id = mine.id
    with transaction(factory) as session, pytest.raises(Invalid, match=r"outside 48\.\.128"):
        pools.allocate(session, pool_id=pool_id, site_id="s1", prefix_length=40, caller=TENANT, now=now)
    with transaction(factory) as session:
        row = pools.allocate(session, pool_id=pool_id, site_id="s1", prefix_length=64, caller=TENANT, now=now)
        assert row.cidr == "fd00:abcd::/64"
    with transaction(factory) as session:
        pool = pools.get_pool(session, ref="mine", caller=TENANT)
        with pytest.raises(Conflict, match="still has 1 allocations"):
            pools.delete_pool(session, pool=pool, caller=TENANT)
        pools.release(session, pool=pool, allocation_id=row.id, caller=TENANT)
    with transaction(factory) as session:  # the released prefix is handed out again
        again = pools.allocate(session, pool_id=pool_id, site_id="s2", prefix_length=64, caller=TENANT, now=now)
        assert again.cidr == "fd00:abcd::/64"


def test_existing_subnets_of_the_sites_are_never_handed_out(factory: sessionmaker[Session]) -> None:
    from skyfleet.domains.addresses.models import AddressSubnet

    with transaction(factory) as session:
        for site, subnet_id, cidr, project in (("s1", "a", "10.50.0.0/24", "p1"), ("s2", "b", "10.50.1.0/25", "p1"),
                                               ("s3", "c", "10.50.2.0/24", "p2")):
            net = ipaddress.ip_network(cidr)
            session.add(AddressSubnet(site_id=site, subnet_id=subnet_id, network_id="n", project_id=project,
                                      cidr=cidr, ip_version=4, first_key=f"{int(net.network_address):032x}",
                                      last_key=f"{int(net.broadcast_address):032x}"))
        pool_id = pools.create_pool(session, name="mine", description="", cidr="10.50.0.0/22", project=None,
                                    shared=False, caller=TENANT, now=utcnow()).id
    got = []
    for _ in range(2):
        with transaction(factory) as session:
            got.append(pools.allocate(session, pool_id=pool_id, site_id="s1", prefix_length=24, caller=TENANT,
                                      now=utcnow()).cidr)
    assert got == ["10.50.2.0/24", "10.50.3.0/24"]  # p1's subnets are skipped; p2's is not p1's concern
    with transaction(factory) as session, pytest.raises(Conflict, match="2 subnets already in the sites"):
        pools.allocate(session, pool_id=pool_id, site_id="s1", prefix_length=24, caller=TENANT, now=utcnow())
