"""Hard mode round after round, with writes that fail, writes still in flight, sites offline and
sites never observed: the sum of what every site may enforce never grows above the global limit.

The model is the bookkeeping of ``skyfleet.reconcile.quota`` without the store: a write that is
acknowledged is confirmed; one that fails or is still in flight is pending (it may or may not have
landed); a read sets the confirmed limit; a site never read is bound by its default.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from skyfleet.domains.quotas.rebalance import (
    EVEN,
    INFINITE,
    POLICIES,
    UNLIMITED,
    SiteBound,
    SiteInput,
    kingbird_limits,
    kingbird_mode_limits,
    two_phase,
)

BUILTIN = 20  # what Skyfleet assumes of a site whose defaults it could not read (stock OpenStack)
OK, FAIL, FAIL_LANDED, IN_FLIGHT = "ok", "fail", "fail-landed", "in-flight"


@dataclass
class Site:
    """The truth (``real``) and what Skyfleet knows of one site."""

    real: int  # the limit the site enforces
    default_known: int  # the default Skyfleet assumes (the real one, or the builtin when unreadable)
    usage: int = 0
    observed: bool = False
    confirmed: int | None = None
    pending: int | None = None
    known_usage: int = 0
    in_flight: int | None = None  # a write sent whose answer has not come back
    online: bool = True


def inf(value: int) -> int:
    return INFINITE if value == UNLIMITED else value


def exposure(sites: dict[str, Site]) -> int:
    """The most the sites may enforce together now (a write in flight may land at any moment)."""
    return sum(max(inf(s.real), inf(s.in_flight) if s.in_flight is not None else 0) for s in sites.values())


def counted(site: Site) -> int:
    """What Skyfleet counts the site at: its confirmed limit (its default if never read), or the
    larger unconfirmed write."""
    values = [inf(s) for s in (site.confirmed if site.observed else site.default_known, site.pending,
                                site.in_flight) if s is not None]
    return max(values)


def accounted(sites: dict[str, Site]) -> int:
    return sum(counted(s) for s in sites.values())


def settle(site: Site, value: int, outcome: str) -> None:
    """The answer to a write of ``value`` comes back with ``outcome``."""
    if outcome == OK:
        site.real, site.confirmed, site.pending = value, value, None
        return
    if outcome == FAIL_LANDED:  # e.g. a 503 from a proxy after the service committed it
        site.real = value
    site.pending = value if site.pending is None else max(inf(site.pending), inf(value))


def plan(global_limit: int, sites: dict[str, Site], policy: str) -> dict[str, int]:
    bounds = {k: SiteBound(usage=s.known_usage, confirmed=s.confirmed if s.observed else None, pending=s.pending,
                           writable=s.online and s.observed and s.in_flight is None, default=s.default_known)
              for k, s in sites.items()}
    return two_phase(global_limit, bounds, policy).writes


def one_round(global_limit: int, sites: dict[str, Site], policy: str, events: list[tuple[bool, bool, str, int]],
              check: list[int], accounts: list[int] | None = None) -> None:
    """Answers come back, tenants use their sites, online sites are read, one plan, its writes.
    ``check`` gets the sites' true exposure after the answers and after the writes (``accounts``
    given: what Skyfleet counts instead); every site is checked never to enforce more than counted."""

    def measure() -> None:
        for site in sites.values():
            assert max(inf(site.real), inf(site.in_flight) if site.in_flight is not None else 0) <= counted(site)
        check.append(exposure(sites) if accounts is None else accounted(sites))

    for site, (_online, _read, outcome, _use) in zip(sites.values(), events, strict=True):
        if site.in_flight is not None and outcome != IN_FLIGHT:  # else still no answer: read while in flight
            settle(site, site.in_flight, outcome)
            site.in_flight = None
    measure()
    for site, (online, read, _outcome, use) in zip(sites.values(), events, strict=True):
        site.online = online
        if use >= 0:  # tenants boot up to what the site allows; a cut below usage deletes nothing
            site.usage = min(site.usage + use, max(inf(site.real), site.usage))
        else:
            site.usage = max(site.usage + use, 0)
        if online and read:
            site.observed, site.confirmed, site.known_usage = True, site.real, site.usage
    writes = plan(global_limit, sites, policy)
    for name, value in writes.items():
        site = sites[name]
        outcome = events[list(sites).index(name)][2]
        if outcome == IN_FLIGHT:
            site.in_flight = value
            site.pending = value if site.pending is None else max(inf(site.pending), inf(value))
        else:
            settle(site, value, outcome)
    measure()


site_event = st.tuples(st.booleans(), st.booleans(), st.sampled_from((OK, OK, FAIL, FAIL_LANDED, IN_FLIGHT)),
                       st.integers(min_value=-5, max_value=8))


@st.composite
def fleet(draw: st.DrawFn) -> tuple[int, dict[str, Site], str, list[list[tuple[bool, bool, str, int]]]]:
    n = draw(st.integers(min_value=1, max_value=5))
    sites = {}
    for i in range(n):
        known = draw(st.booleans())
        native = draw(st.sampled_from((0, 5, 20, 50, UNLIMITED))) if known else BUILTIN
        sites[f"s{i}"] = Site(real=native, default_known=native)
    global_limit = draw(st.integers(min_value=0, max_value=120))
    rounds = draw(st.lists(st.lists(site_event, min_size=n, max_size=n), min_size=1, max_size=12))
    return global_limit, sites, draw(st.sampled_from(POLICIES)), rounds


@settings(max_examples=300, deadline=None)
@given(fleet())
def test_hard_mode_never_raises_the_sum_above_the_global_limit(
        case: tuple[int, dict[str, Site], str, list[list[tuple[bool, bool, str, int]]]]) -> None:
    global_limit, sites, policy, rounds = case
    before = accounted(sites)
    for events in rounds:
        check: list[int] = []
        one_round(global_limit, sites, policy, events, check, accounts=[])
        for now in check:
            # What Skyfleet counts: once within the limit, always within it; above it (the sites'
            # defaults before the first write), it never grows. A site never enforces more than it
            # is counted at, so the sites' true total follows.
            assert now <= max(global_limit, before), (now, before, global_limit)
            before = now
        assert exposure(sites) <= max(global_limit, before)
    # The failures stop and every site is online: the sum converges within the limit (unless the
    # tenants already use more than it, then no site is left above its usage).
    calm = [(True, True, OK, 0)] * len(sites)
    for _ in range(4):
        one_round(global_limit, sites, policy, calm, [])
    total_usage = sum(s.usage for s in sites.values())
    assert exposure(sites) <= max(global_limit, total_usage)
    if total_usage <= global_limit:
        assert all(s.real >= s.usage for s in sites.values())


@settings(max_examples=200, deadline=None)
@given(fleet(), st.integers(min_value=0, max_value=60))
def test_hard_mode_within_the_limit_at_every_step_when_the_defaults_fit(
        case: tuple[int, dict[str, Site], str, list[list[tuple[bool, bool, str, int]]]], spare: int) -> None:
    """The sites' defaults fit in G from the start: Σ of what they may enforce is <= G at every step."""
    _, sites, policy, rounds = case
    if any(s.real == UNLIMITED for s in sites.values()):
        return
    global_limit = sum(s.real for s in sites.values()) + spare
    for events in rounds:
        check: list[int] = []
        one_round(global_limit, sites, policy, events, check)
        assert all(now <= global_limit for now in check), (check, global_limit)


def test_a_site_that_fails_its_write_keeps_the_others_from_growing() -> None:
    """G = 30 over three sites with the stock 20: the first site's write fails (503)."""
    sites = {n: Site(real=20, default_known=20) for n in ("a", "b", "c")}
    everyone_read = [(True, True, OK, 0)] * 3
    check: list[int] = []
    one_round(30, sites, EVEN, [(True, True, FAIL, 0), (True, True, OK, 0), (True, True, OK, 0)], check)
    assert [s.real for s in sites.values()] == [20, 10, 10]
    assert sites["a"].pending == 10  # not recorded as applied
    for _ in range(3):  # it keeps failing: nobody is raised into the room it may still hold
        one_round(30, sites, EVEN, [(True, True, FAIL, 0), (True, True, OK, 0), (True, True, OK, 0)], check)
        assert [s.real for s in sites.values()] == [20, 10, 10]
    one_round(30, sites, EVEN, everyone_read, check)
    assert [s.real for s in sites.values()] == [10, 10, 10]


def test_a_site_never_observed_is_counted_at_its_default() -> None:
    """G = 40, the third site was offline when the quota was set: it keeps its native 20, so the two
    others share 20, not 40."""
    sites = {n: Site(real=20, default_known=20) for n in ("a", "b", "c")}
    events = [(True, True, OK, 0), (True, True, OK, 0), (False, False, OK, 0)]
    for _ in range(3):
        one_round(40, sites, EVEN, events, [])
        assert sum(s.real for s in sites.values()) <= 40
    assert [s.real for s in sites.values()] == [10, 10, 20]
    for _ in range(3):  # it comes back and is read: the others grow once it is cut
        one_round(40, sites, EVEN, [(True, True, OK, 0)] * 3, [])
    assert sorted(s.real for s in sites.values()) == [13, 13, 14]


def test_raises_wait_for_the_reductions_they_depend_on() -> None:
    step = two_phase(30, {"a": SiteBound(usage=12, confirmed=5), "b": SiteBound(usage=0, confirmed=25)}, EVEN)
    assert step.writes == {"b": 9} and step.deferred  # a waits until b's cut is confirmed
    step = two_phase(30, {"a": SiteBound(usage=12, confirmed=5), "b": SiteBound(usage=0, confirmed=9)}, EVEN)
    assert step.writes == {"a": 21} and not step.deferred
    # b's write of 9 failed: it may enforce 25 still, a waits; the cut is sent again
    step = two_phase(30, {"a": SiteBound(usage=12, confirmed=5), "b": SiteBound(usage=0, confirmed=9, pending=25)},
                     EVEN)
    assert step.writes == {"b": 9} and step.deferred
    # an unlimited site that is not writable leaves no room to anyone
    step = two_phase(30, {"a": SiteBound(usage=1, confirmed=5), "b": SiteBound(0, None, writable=False,
                                                                                  default=UNLIMITED)}, EVEN)
    assert step.writes == {"a": 1}


def test_kingbird_mode_is_exactly_kingbirds_rule() -> None:
    usage = {"a": 4, "b": 1, "c": 0}
    assert kingbird_mode_limits(10, {k: SiteInput(usage=u) for k, u in usage.items()}) == \
        kingbird_limits(10, usage) == {"a": 9, "b": 6, "c": 5}
    # above the limit: Kingbird's negative numbers are written as 0 (-1 would mean unlimited)
    assert kingbird_mode_limits(3, {"a": SiteInput(usage=4), "b": SiteInput(usage=1)}) == {"a": 2, "b": 0}
