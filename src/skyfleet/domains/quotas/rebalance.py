"""The rebalance math: from a global limit and each site's usage, the limit to write in each site.

Why it exists: it is the heart of global quota and must be provably right, so it is pure (no I/O)
and property-tested. See docs/quota.md for the invariants.

Hard mode. Let G be the global limit, u_i the usage of site i, U = sum u_i. Sites that cannot be
written (offline) are *held*: their limit stays at h_i, their last known limit, and G' = G - sum h_i
is shared among the others. Each writable site gets ``u_i + share_i`` where the shares split the
headroom ``max(G' - U', 0)`` by weight (largest remainder, so they add up exactly). Invariants:
every limit >= its usage, and whenever U' <= G' the sum of all limits <= G.

Two phases (hard mode, :func:`two_phase`). What a site *may enforce* right now is its bound: the
larger of its confirmed limit (acknowledged write or later read) and any write not confirmed yet (in
flight or failed: it may or may not have landed); a site never observed is bound by its default
limit. Phase 1 writes only reductions (a reduction counts at the old, larger limit until it is
confirmed); phase 2 raises sites only out of ``G - sum of bounds``, so the sum of what the sites
may enforce never grows above G, whatever write fails. Targets a round cannot reach yet are left to
the next round, after the reductions are confirmed.

Soft mode: every writable site gets ``G - U + u_i`` (at least u_i), so any one site may take all of
the headroom and several together may overshoot; breaches raise events. Kingbird mode writes exactly
Kingbird's rule, ``G - U + u_i`` (even below the site's usage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UNLIMITED = -1
HARD, SOFT, KINGBIRD = "hard", "soft", "kingbird"
PROPORTIONAL, EVEN, WEIGHTED = "proportional", "even", "weighted"
MODES = (HARD, SOFT, KINGBIRD)
INFINITE = 10**15  # an unlimited (-1) bound in the sums: no other site can be raised next to it
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
    """Soft mode: each writable site may use all of the remaining headroom (never below its usage)."""
    writable = {k: s for k, s in sites.items() if s.held_limit is None}
    if global_limit == UNLIMITED:
        return dict.fromkeys(writable, UNLIMITED)
    total = sum(s.usage for s in sites.values())
    return {k: max(global_limit - total + s.usage, s.usage) for k, s in writable.items()}


def kingbird_mode_limits(global_limit: int, sites: Mapping[str, SiteInput]) -> dict[str, int]:
    """Kingbird's own rule for the writable sites: ``G - total usage + site usage`` (may be below usage)."""
    writable = {k: s for k, s in sites.items() if s.held_limit is None}
    if global_limit == UNLIMITED:
        return dict.fromkeys(writable, UNLIMITED)
    total = sum(s.usage for s in sites.values())
    return {k: max(global_limit - total + s.usage, 0) for k, s in writable.items()}


def limits_for(mode: str, global_limit: int, sites: Mapping[str, SiteInput], policy: str) -> dict[str, int]:
    if mode == HARD:
        return hard_limits(global_limit, sites, policy)
    if mode == KINGBIRD:
        return kingbird_mode_limits(global_limit, sites)
    return soft_limits(global_limit, sites)


@dataclass(frozen=True)
class SiteBound:
    """One site's side of one resource in a hard-mode round: what it may enforce now and whether it
    can be written.

    ``confirmed`` is the limit the site is known to enforce (an acknowledged write, or a read after
    it); None: never observed, so it enforces its ``default``. ``pending`` is the largest write not
    confirmed (in flight, or failed: it may have landed). -1 is unlimited.
    """

    usage: int
    confirmed: int | None
    pending: int | None = None
    writable: bool = True  # online, observed, mapped, and no write of it still in flight
    weight: float = 1.0
    default: int = 0  # the limit the site enforces when it was never written


def _inf(value: int) -> int:
    return INFINITE if value == UNLIMITED else value


def bound(site: SiteBound) -> int:
    """The largest limit the site may enforce now (unlimited: ``INFINITE``)."""
    values = [site.default if site.confirmed is None else site.confirmed]
    if site.pending is not None:
        values.append(site.pending)
    return max(_inf(v) for v in values)


@dataclass(frozen=True)
class Step:
    """What one round writes (reductions, then the raises the confirmed limits leave room for), and
    whether some site is still short of its target (the project must be planned again)."""

    writes: dict[str, int]
    deferred: bool
    targets: dict[str, int]


def two_phase(global_limit: int, sites: Mapping[str, SiteBound], policy: str = PROPORTIONAL) -> Step:
    """Hard mode, one round: the writes that keep the sum of what every site may enforce within G.

    Targets are :func:`hard_limits` with every site that cannot be written held at its bound. Phase
    1: every writable site above its target is written down to it (a reduction still counts at its
    old bound). Phase 2: sites below their target are raised only out of ``G - sum of bounds``, in
    name order. A write of an unchanged value is sent when an earlier write is unconfirmed, so that
    it becomes confirmed.
    """
    bounds = {k: bound(s) for k, s in sites.items()}
    if global_limit == UNLIMITED:
        opened = {k: UNLIMITED for k, s in sites.items()
                  if s.writable and (s.confirmed != UNLIMITED or s.pending not in (None, UNLIMITED))}
        return Step(writes=opened, deferred=False, targets=dict.fromkeys(opened, UNLIMITED))
    inputs = {k: SiteInput(usage=s.usage, held_limit=None if s.writable else max(bounds[k], s.usage),
                           weight=s.weight) for k, s in sites.items()}
    targets = hard_limits(global_limit, inputs, policy)
    writes: dict[str, int] = {}
    raises: list[str] = []
    for name, target in targets.items():
        site = sites[name]
        if target < bounds[name]:
            writes[name] = target  # phase 1: a reduction
        elif target > bounds[name]:
            raises.append(name)
        elif site.pending is not None or site.confirmed != target:
            writes[name] = target  # the bound does not move; the write confirms it
    free = global_limit - sum(bounds.values())
    deferred = False
    for name in sorted(raises):  # phase 2: out of what the confirmed limits leave
        grant = min(targets[name] - bounds[name], max(free, 0))
        if grant < targets[name] - bounds[name]:
            deferred = True
        if grant > 0:
            writes[name] = bounds[name] + grant
            free -= grant
    return Step(writes=writes, deferred=deferred, targets=targets)


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


def plan_hard_project(policy: str, global_limits: Mapping[str, int], *, usage: Mapping[str, Mapping[str, int]],
                      confirmed: Mapping[str, Mapping[str, int] | None], pending: Mapping[str, Mapping[str, int]],
                      writable: set[str], defaults: Mapping[str, Mapping[str, int]],
                      weights: Mapping[str, float]) -> tuple[dict[str, dict[str, int]], bool]:
    """Hard mode for one project: per site and resource the limits to write this round, and whether
    some target is deferred to a later round.

    Every site that may enforce a limit for the project is in ``confirmed`` (None: never observed,
    bound by ``defaults``); only sites in ``writable`` are written.
    """
    out: dict[str, dict[str, int]] = {}
    deferred = False
    for resource, limit in global_limits.items():
        inputs = {}
        for site, known in confirmed.items():
            value = None if known is None else known.get(resource)
            inputs[site] = SiteBound(
                usage=int((usage.get(site) or {}).get(resource, 0)),
                confirmed=None if value is None else int(value),
                pending=(pending.get(site) or {}).get(resource),
                writable=site in writable and known is not None and value is not None,
                weight=float(weights.get(site, 1.0)),
                default=int((defaults.get(site) or {}).get(resource, 0)))
        step = two_phase(int(limit), inputs, policy)
        deferred = deferred or step.deferred
        for site, value in step.writes.items():
            out.setdefault(site, {})[resource] = value
    return out, deferred
