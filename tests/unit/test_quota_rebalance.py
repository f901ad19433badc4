"""Property tests of the rebalance math (hypothesis) and the overshoot comparison with Kingbird."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfleet.domains.quotas.rebalance import (
    EVEN,
    POLICIES,
    PROPORTIONAL,
    WEIGHTED,
    SiteInput,
    hard_limits,
    kingbird_limits,
    plan_project,
    soft_limits,
    split,
)

usages = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40)


@st.composite
def fleet(draw: st.DrawFn) -> tuple[int, dict[str, SiteInput], str]:
    used = draw(usages)
    offline = draw(st.lists(st.booleans(), min_size=len(used), max_size=len(used)))
    weights = draw(st.lists(st.floats(min_value=0, max_value=100), min_size=len(used), max_size=len(used)))
    sites: dict[str, SiteInput] = {}
    for i, (u, off, w) in enumerate(zip(used, offline, weights, strict=True)):
        held = draw(st.integers(min_value=u, max_value=u + 1000)) if off else None
        sites[f"s{i}"] = SiteInput(usage=u, held_limit=held, weight=w)
    floor = sum(s.usage if s.held_limit is None else s.held_limit for s in sites.values())
    global_limit = draw(st.integers(min_value=floor, max_value=floor + 100_000))
    return global_limit, sites, draw(st.sampled_from(POLICIES))


@settings(max_examples=400)
@given(fleet())
def test_hard_mode_never_exceeds_the_global_limit_nor_cuts_below_usage(
        case: tuple[int, dict[str, SiteInput], str]) -> None:
    global_limit, sites, policy = case
    limits = hard_limits(global_limit, sites, policy)
    assert set(limits) == {k for k, s in sites.items() if s.held_limit is None}
    held = sum(s.held_limit for s in sites.values() if s.held_limit is not None)
    assert sum(limits.values()) + held <= global_limit
    for name, limit in limits.items():
        assert limit >= sites[name].usage


@settings(max_examples=300)
@given(usages, st.integers(min_value=0, max_value=50_000), st.sampled_from(POLICIES))
def test_hard_mode_hands_out_all_the_headroom(used: list[int], extra: int, policy: str) -> None:
    sites = {f"s{i}": SiteInput(usage=u) for i, u in enumerate(used)}
    global_limit = sum(used) + extra
    assert sum(hard_limits(global_limit, sites, policy).values()) == global_limit


@settings(max_examples=300)
@given(usages, st.integers(min_value=0, max_value=50_000))
def test_over_the_limit_every_site_is_held_at_its_usage(used: list[int], cut: int) -> None:
    sites = {f"s{i}": SiteInput(usage=u) for i, u in enumerate(used)}
    global_limit = max(sum(used) - cut - 1, 0)
    if sum(used) <= global_limit:
        return
    assert hard_limits(global_limit, sites, EVEN) == {k: s.usage for k, s in sites.items()}


@given(st.integers(min_value=0, max_value=10**6), st.dictionaries(
    st.text(min_size=1, max_size=3), st.floats(min_value=0.01, max_value=1e3), min_size=1, max_size=30))
def test_split_adds_up_exactly(amount: int, weights: dict[str, float]) -> None:
    shares = split(amount, weights)
    assert sum(shares.values()) == amount and all(v >= 0 for v in shares.values())


def test_policies_share_headroom_differently() -> None:
    sites = {"a": SiteInput(usage=9, weight=3), "b": SiteInput(usage=0, weight=1)}
    assert hard_limits(29, sites, EVEN) == {"a": 19, "b": 10}
    assert hard_limits(29, sites, PROPORTIONAL) == {"a": 9 + 18, "b": 2}
    assert hard_limits(29, sites, WEIGHTED) == {"a": 9 + 15, "b": 5}
    assert hard_limits(-1, sites, EVEN) == {"a": -1, "b": -1}


def test_soft_mode_is_kingbirds_rule() -> None:
    sites = {"a": SiteInput(usage=4), "b": SiteInput(usage=1), "c": SiteInput(usage=0, held_limit=7)}
    assert soft_limits(10, sites) == {"a": 9, "b": 6}


@pytest.mark.parametrize("n_sites", [2, 3, 10])
def test_kingbird_lets_n_sites_overshoot_together_and_hard_mode_does_not(n_sites: int) -> None:
    """Every site fills its own limit at once: Kingbird's total usage reaches N x the global limit."""
    global_limit = 10
    usage = {f"s{i}": 0 for i in range(n_sites)}
    kingbird_total = sum(kingbird_limits(global_limit, usage).values())
    hard = hard_limits(global_limit, {k: SiteInput(usage=u) for k, u in usage.items()}, EVEN)
    assert kingbird_total == n_sites * global_limit > global_limit
    assert sum(hard.values()) == global_limit


def test_plan_project_holds_offline_sites_and_shares_the_rest() -> None:
    plan = plan_project("hard", EVEN, {"cores": 20, "instances": -1},
                        usage={"a": {"cores": 4}, "b": {"cores": 2}, "down": {"cores": 3}},
                        held={"down": {"cores": 6}}, weights={})
    assert set(plan) == {"a", "b"}
    assert plan["a"]["cores"] + plan["b"]["cores"] == 20 - 6
    assert plan["a"]["cores"] >= 4 and plan["b"]["cores"] >= 2
    assert plan["a"]["instances"] == -1


def test_full_reads_are_due_once_per_interval_spread_over_its_second_half() -> None:
    from datetime import UTC, datetime, timedelta

    from skyfleet.domains.quotas.models import QuotaSiteState
    from skyfleet.reconcile.quota import full_read_due

    now = datetime(2026, 11, 22, tzinfo=UTC)

    def state(project: str, age: float | None, error: str | None = None) -> QuotaSiteState:
        read = None if age is None else now - timedelta(seconds=age)
        return QuotaSiteState(project_id=project, site_id="s", observed_at=now, full_read_at=read, last_error=error)

    assert full_read_due(None, now=now, interval=3600)
    assert full_read_due(state("p", None), now=now, interval=3600)
    assert full_read_due(state("p", 1, error="HTTP 503"), now=now, interval=3600)
    projects = [f"p{i}" for i in range(400)]
    assert not any(full_read_due(state(p, 1799), now=now, interval=3600) for p in projects)
    assert all(full_read_due(state(p, 3600), now=now, interval=3600) for p in projects)
    halfway = sum(full_read_due(state(p, 2700), now=now, interval=3600) for p in projects)
    assert 100 < halfway < 300  # spread: about half of the pairs are due three quarters of the way
