"""The rebalance math: from a global limit and each site's usage, the limit to write in each site.

Why it exists: it is the heart of global quota and must be provably right, so it is pure (no I/O)
and property-tested. See docs/quota.md for the invariants.

Hard mode. Let G be the global limit, u_i the usage of site i, U = sum u_i. Sites that cannot be
written (offline) are *held*: their limit stays at h_i, their last known limit, and G' = G - sum h_i
is shared among the others. Each writable site gets ``u_i + share_i`` where the shares split the
headroom ``max(G' - U', 0)`` by weight (largest remainder, so they add up exactly). Invariants:
every limit >= its usage, and whenever U' <= G' the sum of all limits <= G.

Soft mode (Kingbird's rule): every writable site gets ``G - U + u_i`` (at least u_i), so any one site
may take all of the headroom and several together may overshoot; breaches raise events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UNLIMITED = -1
HARD, SOFT = "hard", "soft"
PROPORTIONAL, EVEN, WEIGHTED = "proportional", "even", "weighted"
MODES = (HARD, SOFT)
POLICIES = (PROPORTIONAL, EVEN, WEIGHTED)


@dataclass(frozen=True)
class SiteInput:
    """One site's side of one resource: its usage and, when it cannot be written, its held limit."""

    usage: int
    held_limit: int | None = None  # set: the site is offline and keeps this limit
    weight: float = 1.0


def _weights(sites: Mapping[str, SiteInput], policy: str) -> dict[str, float]:
    if policy == PROPORTIONAL:
        raw = {k: float(s.usage) + 1.0 for k, s in sites.items()}  # +1: an idle site still gets a share
    elif policy == WEIGHTED:
        raw = {k: max(float(s.weight), 0.0) for k, s in sites.items()}
    else:
        raw = {k: 1.0 for k in sites}
    if sum(raw.values()) <= 0:
        raw = {k: 1.0 for k in sites}
    return raw


def split(amount: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``amount`` (>= 0) into integers proportional to ``weights``; they add up to ``amount``."""
    if not weights:
        return {}
    total = sum(weights.values())
    exact = {k: amount * w / total for k, w in weights.items()}
    shares = {k: int(v) for k, v in exact.items()}
    left = amount - sum(shares.values())
    for key in sorted(exact, key=lambda k: (shares[k] - exact[k], k))[:left]:
        shares[key] += 1
    return shares


def hard_limits(global_limit: int, sites: Mapping[str, SiteInput], policy: str = PROPORTIONAL) -> dict[str, int]:
    """Per-site limits for the writable sites (held sites are left out of the answer)."""
    writable = {k: s for k, s in sites.items() if s.held_limit is None}
    if global_limit == UNLIMITED:
        return dict.fromkeys(writable, UNLIMITED)
    held = sum(max(s.held_limit or 0, s.usage) for s in sites.values() if s.held_limit is not None)
    available = global_limit - held
    headroom = max(available - sum(s.usage for s in writable.values()), 0)
    shares = split(headroom, _weights(writable, policy))
    return {k: s.usage + shares[k] for k, s in writable.items()}


def soft_limits(global_limit: int, sites: Mapping[str, SiteInput]) -> dict[str, int]:
    """Kingbird's rule: each writable site may use all of the remaining headroom."""
    writable = {k: s for k, s in sites.items() if s.held_limit is None}
    if global_limit == UNLIMITED:
        return dict.fromkeys(writable, UNLIMITED)
    total = sum(s.usage for s in sites.values())
    return {k: max(global_limit - total + s.usage, s.usage) for k, s in writable.items()}


def limits_for(mode: str, global_limit: int, sites: Mapping[str, SiteInput], policy: str) -> dict[str, int]:
    return hard_limits(global_limit, sites, policy) if mode == HARD else soft_limits(global_limit, sites)


def plan_project(mode: str, policy: str, global_limits: Mapping[str, int],
                 usage: Mapping[str, Mapping[str, int]], held: Mapping[str, Mapping[str, int]],
                 weights: Mapping[str, float]) -> dict[str, dict[str, int]]:
    """Limits per writable site and resource for one project.

    ``usage``: site -> resource -> usage; ``held``: site -> resource -> limit of the sites that
    cannot be written now (offline); ``weights``: site -> weight (policy ``weighted``).
    """
    out: dict[str, dict[str, int]] = {site: {} for site in usage if site not in held}
    for resource, limit in global_limits.items():
        inputs = {site: SiteInput(usage=int(used.get(resource, 0)),
                                  held_limit=(held[site].get(resource, int(used.get(resource, 0)))
                                              if site in held else None),
                                  weight=float(weights.get(site, 1.0)))
                  for site, used in usage.items()}
        for site, value in limits_for(mode, int(limit), inputs, policy).items():
            out[site][resource] = value
    return out


def kingbird_limits(global_limit: int, usage: Mapping[str, int]) -> dict[str, int]:
    """What Kingbird wrote: ``global - total usage + site usage`` in every site (for comparison)."""
    total = sum(usage.values())
    return {site: global_limit - total + used for site, used in usage.items()}
