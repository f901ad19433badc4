"""Address math: sortable keys for v4 and v6, CIDR and MAC parsing with reasons, Neutron's pool
size rule, JSON-safe counts for huge v6 subnets, and the overlap sweep (checked against every pair)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyfleet.domains.addresses import netmath
from skyfleet.errors import Invalid


def test_keys_sort_like_addresses_and_cidrs_are_key_ranges() -> None:
    addresses = [ipaddress.ip_address(a) for a in ("10.0.0.2", "10.0.0.10", "9.255.255.255", "192.168.1.1")]
    assert sorted(addresses, key=netmath.key_of) == sorted(addresses)
    first, last = netmath.key_range(ipaddress.ip_network("10.0.0.0/8"))
    assert first <= netmath.key_of(ipaddress.ip_address("10.200.3.4")) <= last
    assert not first <= netmath.key_of(ipaddress.ip_address("11.0.0.0")) <= last
    v6_first, v6_last = netmath.key_range(ipaddress.ip_network("fd00:abcd::/48"))
    assert v6_first <= netmath.key_of(ipaddress.ip_address("fd00:abcd:0:ffff::1")) <= v6_last
    assert netmath.key_of(ipaddress.ip_address("fd00:abce::")) > v6_last
    assert len(netmath.key_of(ipaddress.ip_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))) == 32


@pytest.mark.parametrize(("text", "reason"), [
    ("10.0.0.0", "no prefix length"), ("10.0.0.1/8", "did you mean 10.0.0.0/8"), ("10.0.0.0/33", "not a valid"),
    ("fd00::1/48", "did you mean fd00::/48"), ("banana/8", "not a valid"), ("", "no prefix length"),
])
def test_a_bad_cidr_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        netmath.parse_cidr(text)


def test_addresses_and_macs_are_normalised_or_refused() -> None:
    assert str(netmath.parse_address("FD00::0001")) == "fd00::1"
    with pytest.raises(Invalid, match="not an IPv4 or IPv6"):
        netmath.parse_address("10.0.0.256")
    assert netmath.normalise_mac("FA-16-3E-00-AB-CD") == "fa:16:3e:00:ab:cd"
    assert netmath.normalise_mac("fa163e00abcd") == "fa:16:3e:00:ab:cd"
    for bad in ("fa:16:3e:00:ab", "fa:16-3e:00:ab:cd", "zz:16:3e:00:ab:cd"):
        with pytest.raises(Invalid, match="not a MAC"):
            netmath.normalise_mac(bad)


@pytest.mark.parametrize(("cidr", "gateway", "size"), [
    ("10.0.0.0/24", "10.0.0.1", 253),  # 256 - network - broadcast - gateway
    ("10.0.0.0/24", None, 254),
    ("10.0.0.0/30", "10.0.0.1", 1),
    ("10.0.0.0/31", None, 0),  # Neutron gives a v4 /31 no pool
    ("10.0.0.5/32", None, 1),
    ("10.0.0.0/24", "10.0.1.1", 254),  # a gateway outside the subnet takes nothing
    ("fd00::/64", "fd00::1", 2**64 - 2),  # v6: no broadcast, the first (anycast) address and the gateway
    ("fd00::/126", None, 3),
    ("fd00::/127", None, 0),
])
def test_pool_size_follows_neutron(cidr: str, gateway: str | None, size: int) -> None:
    network = ipaddress.ip_network(cidr)
    assert netmath.neutron_pool_size(network, ipaddress.ip_address(gateway) if gateway else None) == size


def test_huge_counts_become_strings_for_json() -> None:
    assert netmath.json_count(253) == 253
    assert netmath.json_count(2**53 - 1) == 2**53 - 1
    assert netmath.json_count(2**64 - 2) == "18446744073709551614"


def _span(cidr: str, ref: str) -> netmath.Span:
    network = ipaddress.ip_network(cidr)
    return netmath.Span(network.version, int(network.network_address), int(network.broadcast_address), ref)


def test_overlap_groups_join_nested_and_chained_ranges_per_version() -> None:
    spans = [_span("10.0.0.0/16", "a"), _span("10.0.5.0/24", "b"), _span("10.1.0.0/24", "c"),
             _span("10.1.0.128/25", "d"), _span("192.168.0.0/24", "e"), _span("fd00::/64", "f"),
             _span("fd00::/48", "g"), _span("::a00:0/104", "h")]  # v6 with v4's numbers: never v4's overlap
    groups = [sorted(str(s.ref) for s in g) for g in netmath.overlap_groups(spans)]
    assert sorted(groups) == [["a", "b"], ["c", "d"], ["f", "g"]]


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(24, 32)), min_size=0, max_size=30))
def test_every_overlapping_pair_lands_in_one_group(raw: list[tuple[int, int]]) -> None:
    spans = [_span(str(ipaddress.ip_network(f"10.0.{third}.0/{length}", strict=False)), str(i))
             for i, (third, length) in enumerate(raw)]
    group_of = {}
    for number, group in enumerate(netmath.overlap_groups(spans)):
        for span in group:
            group_of[span.ref] = number
    for i, a in enumerate(spans):
        for b in spans[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a.ref in group_of and group_of[a.ref] == group_of.get(b.ref)
    for number in set(group_of.values()):  # a group is connected: each member overlaps another one
        members = [s for s in spans if group_of.get(s.ref) == number]
        for s in members:
            assert any(o is not s and o.first <= s.last and s.first <= o.last for o in members) or len(members) == 1
