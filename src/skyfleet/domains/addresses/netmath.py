"""Address math, in one place, on the standard library's ``ipaddress``.

Why it exists: the address view compares and counts IPv4 and IPv6 addresses stored as text. Every
other module goes through these functions so that v6 is never special-cased away: an address is
stored with a fixed-width key (32 hex digits for both versions) so that ``ORDER BY`` and a CIDR
containment test are a plain indexed range on one column, and sizes are Python integers (a /48 of
v6 has 2**80 addresses, which no SQL integer holds).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from skyfleet.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
KEY_WIDTH = 32  # hex digits of a 128-bit address
JSON_SAFE = 2**53 - 1  # the largest integer every JSON client reads exactly
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


def key_of(address: IPAddress) -> str:
    """The sortable key of an address (its integer as 32 hex digits; the version is stored apart)."""
    return f"{int(address):0{KEY_WIDTH}x}"


def parse_address(text: str, what: str = "ip") -> IPAddress:
    """An address, or :class:`Invalid` naming the parameter and why."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise Invalid(f"{what}: {text[:64]!r} is not an IPv4 or IPv6 address ({exc})") from None


def parse_cidr(text: str, what: str = "cidr") -> IPNetwork:
    """A network in CIDR notation; host bits set, or anything malformed, is :class:`Invalid` with the reason."""
    raw = text.strip()
    if "/" not in raw:
        raise Invalid(f"{what}: {raw[:64]!r} has no prefix length; write it as 10.0.0.0/8 or fd00::/48")
    try:
        return ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        hint = ""
        with contextlib.suppress(ValueError):
            hint = f"; did you mean {ipaddress.ip_network(raw, strict=False)}?"
        raise Invalid(f"{what}: {raw[:64]!r} is not a valid CIDR ({exc}){hint}") from None


def address_of(version: int, value: int) -> IPAddress:
    """The address of ``version`` with integer ``value`` (``ip_address(1)`` alone would be v4)."""
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def key_range(network: IPNetwork) -> tuple[str, str]:
    """The first and last address keys of ``network`` (both inclusive)."""
    return key_of(network.network_address), key_of(network.broadcast_address)


def normalise_mac(text: str, what: str = "mac") -> str:
    """A MAC address in lower case with colons; :class:`Invalid` for anything else."""
    raw = text.strip().lower()
    if not _MAC.match(raw):
        raise Invalid(f"{what}: {text[:40]!r} is not a MAC address (six hex pairs, e.g. fa:16:3e:00:00:01)")
    digits = raw.replace(":", "").replace("-", "")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def neutron_pool_size(network: IPNetwork, gateway: IPAddress | None) -> int:
    """How many addresses Neutron can hand out in a subnet with its default allocation pool.

    Neutron's rule (``neutron.ipam.utils.generate_pools``): the pool runs from the second address to
    the last one, minus the last for IPv4 (broadcast); the first address is the network address (v4)
    or the subnet-router anycast address (v6). A one-address subnet is its own pool; a v4 /31 and a v6
    /127 get no pool. The gateway address, when it is inside the pool, is taken out of it.
    """
    first, last = int(network.network_address), int(network.broadcast_address)
    if first == last:
        return 1
    low, high = first + 1, last - (1 if network.version == 4 else 0)
    if low >= high:
        return 0
    size = high - low + 1
    if gateway is not None and gateway.version == network.version and low <= int(gateway) <= high:
        size -= 1
    return size


def json_count(value: int) -> int | str:
    """An exact count for JSON: an integer, or a decimal string beyond 2**53 (huge IPv6 subnets)."""
    return value if value <= JSON_SAFE else str(value)


@dataclass(frozen=True)
class Span:
    """A subnet (or any CIDR) as an integer range, with whatever identifies it."""

    version: int
    first: int
    last: int
    ref: Any  # whatever the caller needs back (a row)


def overlap_groups(spans: Iterable[Span]) -> Iterator[list[Span]]:
    """Groups of spans that overlap one another, transitively (each group has at least two).

    A sweep over the spans sorted by start: O(n log n) however many spans share a range, where
    comparing every pair would cost n² for a fleet whose sites all use 10.0.0.0/24.
    """
    ordered = sorted(spans, key=lambda s: (s.version, s.first, s.last))
    group: list[Span] = []
    reach = -1
    for span in ordered:
        if group and span.version == group[0].version and span.first <= reach:
            group.append(span)
            reach = max(reach, span.last)
            continue
        if len(group) > 1:
            yield group
        group, reach = [span], span.last
    if len(group) > 1:
        yield group
