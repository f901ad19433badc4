"""Ranked placement of a boot: which sites can take the servers, which cannot and why.

``plan`` is pure reading of Skyfleet's own tables (sites, their labels and location, the global
view's capacity, availability zones, flavors and images, declared images, global quota): no site is
called, and every fact is one query over all the sites in scope (:mod:`.facts`), so a decision over
thousands of sites stays fast and explainable.

The rules (docs/placement.md): a candidate is a managed site that is online (degraded: allowed,
ranked after the online ones), within the explicit site, selector or group, with the flavor, room
for at least one server (capacity and the caller's quota), the image (present, or copied before the
boot) and, when named, the availability zone. Every failed rule of an excluded site is reported.
A site with no hypervisor in the inventory has unknown capacity: allowed, ranked after the known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from skyfleet.domains.placement import cache, facts
from skyfleet.domains.placement import images as image_rules
from skyfleet.domains.placement.facts import Flavor, QuotaFacts, SiteFacts
from skyfleet.domains.placement.schemas import BootRequest, Candidate, Excluded, PlacementPlan, ServerPlacement
from skyfleet.domains.selectors import parse_selector
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.errors import NotFound

EARTH_RADIUS_KM = 6371.0
PENALTY = 1.0  # one tier down: policy components stay within [0, 1)
#: The best candidates a plan lists (a spill-over never goes further; the excluded are all listed).
MAX_CANDIDATES = 100


@dataclass(slots=True)
class Evaluation:
    """One site judged against the request: what excludes it, or how it ranks."""

    site: SiteFacts
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flavor: Flavor | None = None
    slots: int | None = None  # servers that fit (capacity and the site's quota); None: capacity unknown
    image: image_rules.Route | None = None
    headroom: facts.Headroom = field(default_factory=dict)
    penalty: float = 0.0
    score: float = 0.0


@dataclass
class Context:
    """The facts shared by every site's evaluation."""

    request: BootRequest
    is_admin: bool
    flavors: dict[str, list[Flavor]]
    reference: Flavor | None  # the flavor as most sites know it (for sites that lack it, and the plan)
    declared: image_rules.Declared | None
    image_name: str
    site_images: dict[str, list[facts.SiteImage]]
    quota: QuotaFacts


def plan(session: Session, *, project_id: str | None, is_admin: bool, request: BootRequest,
         now: datetime) -> PlacementPlan:
    """The ranked candidates for ``request`` on behalf of ``project_id``, the excluded sites with every
    reason, and the site of each of the ``count`` servers (empty with ``problem`` when they cannot all
    be placed). ``now`` is the decision's time (reserved for freshness rules; the store is read as is)."""
    placement = request.placement
    session.flush()  # the facts are read from the connection, past the ORM
    try:
        scope, explicit = _scope(session, placement)
    except NotFound as exc:  # an explicit site that does not exist: nothing to rank, and the reason
        return PlacementPlan(candidates=[], excluded=[], assignments=[], policy="explicit", problem=exc.detail)
    declared = image_rules.find_declared(session, ref=request.image, project_id=project_id, is_admin=is_admin)
    site_facts = facts.load_sites(session, scope, label_keys=_label_keys(placement, declared))
    inventory = cache.FACTS.view(session)  # capacity, zones, flavors, images: as stored now, read once
    facts.add_capacity(site_facts, inventory.capacity())
    if explicit is not None:
        facts.add_zones(session, site_facts, inventory.zones())
    facts.add_projects(session, site_facts, project_id=project_id)
    image_name = declared.resource.name if declared else request.image
    found = inventory.flavors(request.flavor)
    ctx = Context(request=request, is_admin=is_admin, flavors=found, reference=_reference(found, site_facts, is_admin),
                  declared=declared, image_name=image_name, site_images=inventory.images(image_name),
                  quota=facts.quota(session, project_id=project_id))
    evaluations = [_evaluate(ctx, site, explicit=site.id == explicit) for site in site_facts]
    policy = "explicit" if explicit is not None else (placement.policy or "pack")
    ranked = _rank(policy, [e for e in evaluations if not e.problems], placement, explicit)
    excluded = [Excluded(site_id=e.site.id, site_name=e.site.name, reasons=e.problems)
                for e in evaluations if e.problems]
    assignments, problem = _assign(policy, ranked, request, _global_slots(ctx))
    shown = ranked[:max(MAX_CANDIDATES, len(set(assignments)))]  # every assigned site is among the first
    return PlacementPlan(candidates=[_candidate(e, placement.availability_zone if e.site.id == explicit else None)
                                     for e in shown],
                         more_candidates=len(ranked) - len(shown),
                         excluded=excluded, assignments=assignments, policy=policy, problem=problem,
                         flavor=ctx.reference.as_dict() if ctx.reference else {})


def _scope(session: Session, placement: ServerPlacement) -> tuple[Select[Any], str | None]:
    """The query of the ids of the sites to consider, and the explicit site's id."""
    if placement.site is not None:
        site = sites.get_site(session, placement.site)  # NotFound names the site
        if placement.allow_spill:
            return select(Site.id).where(or_(Site.managed.is_(True), Site.id == site.id)), site.id
        return select(Site.id).where(Site.id == site.id), site.id
    filters = sites.SiteFilter(selector=parse_selector(placement.selector or ""), group=placement.group, managed=True)
    return sites.site_query(filters).with_only_columns(Site.id), None


def _label_keys(placement: ServerPlacement, declared: image_rules.Declared | None) -> set[str]:
    """The labels the decision reads: the weight label, and those of the declared image's selector."""
    keys = {placement.weight_label} if placement.weight_label else set()
    selector = (declared.resource.placement or {}).get("selector") if declared else None
    if selector:
        keys |= {req.key for req in parse_selector(selector)}
    return keys


def _reference(found: dict[str, list[Flavor]], site_facts: Sequence[SiteFacts], is_admin: bool) -> Flavor | None:
    """The flavor definition the most sites share (ties: the first by site name)."""
    seen: dict[tuple[int, int, int], tuple[int, Flavor]] = {}
    for site in site_facts:
        flavor = facts.usable_flavor(found.get(site.id, ()), projects=site.projects, is_admin=is_admin)
        if flavor is not None:
            key = (flavor.vcpus, flavor.ram, flavor.disk)
            seen[key] = (seen.get(key, (0, flavor))[0] + 1, seen.get(key, (0, flavor))[1])
    if not seen:
        return None
    return max(seen.values(), key=lambda pair: pair[0])[1]


def _evaluate(ctx: Context, site: SiteFacts, *, explicit: bool) -> Evaluation:
    ev = Evaluation(site=site)
    _check_site(ev, explicit=explicit)
    _check_flavor(ctx, ev)
    if explicit and ctx.request.placement.availability_zone is not None:
        _check_zone(ev, ctx.request.placement.availability_zone)
    flavor = ev.flavor or ctx.reference
    capacity = _capacity_slots(ev, flavor)
    quota_slots = _quota_slots(ctx, ev, flavor)
    known = [n for n in (capacity, quota_slots) if n is not None]
    ev.slots = min(known) if known else None
    if ev.slots is not None and 0 < ev.slots < ctx.request.count:
        ev.notes.append(f"room for {ev.slots} of the {ctx.request.count} servers")
    _check_image(ctx, ev)
    if ctx.request.placement.policy == "weighted" and not explicit:
        _check_weight(ev, ctx.request.placement.weight_label or "")
    return ev


def _check_site(ev: Evaluation, *, explicit: bool) -> None:
    site = ev.site
    if not site.managed:
        ev.problems.append("site is not managed by Skyfleet")
    if site.availability == "degraded":
        ev.notes.append("site is degraded (a service failed its probe): ranked after online sites")
        ev.penalty += PENALTY
    elif site.availability != "online":
        ev.problems.append(f"site is {site.availability}" + (" (not probed yet)" if site.availability == "unknown"
                                                             else ""))


def _check_flavor(ctx: Context, ev: Evaluation) -> None:
    named = ctx.flavors.get(ev.site.id, [])
    ev.flavor = facts.usable_flavor(named, projects=ev.site.projects, is_admin=ctx.is_admin)
    if ev.flavor is None:
        ev.problems.append(f"flavor {ctx.request.flavor!r} is private and the project has no access to it" if named
                           else f"no flavor named {ctx.request.flavor!r} in the site's inventory")


def _check_zone(ev: Evaluation, zone: str) -> None:
    names = ev.site.zone_names
    if zone in names:
        return
    if ev.site.zones.get(zone) is False:
        ev.problems.append(f"availability zone {zone!r} is not available")
    elif names:
        ev.problems.append(f"no availability zone {zone!r} (the site has {', '.join(names)})")
    else:
        ev.problems.append(f"no availability zone {zone!r}: the site reports no availability zones")


def _capacity_slots(ev: Evaluation, flavor: Flavor | None) -> int | None:
    free = ev.site.free
    if free is None:
        ev.notes.append("capacity unknown (no hypervisor in the inventory): ranked after sites with known capacity")
        ev.penalty += PENALTY
        return None
    if flavor is None:
        return None
    need = {"vcpus": flavor.vcpus, "ram_mb": flavor.ram, "disk_gb": flavor.disk}
    fits = [free[k] // v for k, v in need.items() if v > 0]
    slots = min(fits) if fits else 0
    if slots == 0:
        short = [f"{k} {free[k]} < {v}" for k, v in need.items() if v > free[k]]
        ev.problems.append(f"no capacity for one {flavor.name}: free " + ", ".join(short or ["nothing"]))
    return slots


def _quota_fit(headroom: facts.Headroom, flavor: Flavor | None) -> tuple[int | None, list[str]]:
    """How many servers of ``flavor`` the headroom allows (None: no limit known), and what is short."""
    need = {"instances": 1, "cores": flavor.vcpus if flavor else 0, "ram": flavor.ram if flavor else 0}
    fits = [left // need[k] for k, left in headroom.items() if left is not None and need.get(k, 0) > 0]
    short = [f"{k} {left} left < {need[k]}" for k, left in headroom.items()
             if left is not None and need.get(k, 0) > left]
    return (min(fits) if fits else None), short


def _quota_slots(ctx: Context, ev: Evaluation, flavor: Flavor | None) -> int | None:
    if ev.site.id in ctx.quota.absent:
        ev.problems.append("the project does not exist in the site's Keystone")
    ev.headroom = ctx.quota.at(ev.site.id)
    slots, short = _quota_fit(ev.headroom, flavor)
    if short:
        ev.problems.append("quota: " + ", ".join(short) + " for one server")
    return slots


def _check_image(ctx: Context, ev: Evaluation) -> None:
    if ctx.declared is not None:
        ev.image = image_rules.declared_route(ctx.declared, ev.site)
        if ev.image is not None:
            return
    on_site = ctx.site_images.get(ev.site.id, [])
    usable = [i for i in on_site if facts.visible_image(i, projects=ev.site.projects, is_admin=ctx.is_admin)]
    if usable:
        mine = [i for i in usable if i.project_id in ev.site.projects] or usable
        ev.image = image_rules.Route("present", mine[0].remote_id, f"image {ctx.image_name!r} is on the site")
        return
    why = f"image {ctx.image_name!r} is on the site but not visible to the project" if on_site else \
        f"no image {ctx.image_name!r} on the site"
    if ctx.declared is not None:
        mode = ctx.declared.mode
        why += (f"; declared image {ctx.declared.resource.name!r} (mode {mode}) is not placed on the site"
                if not image_rules.placed(ctx.declared, ev.site) else
                f"; declared image {ctx.declared.resource.name!r} (mode {mode}) is not copied there yet")
    ev.problems.append(why)


def _check_weight(ev: Evaluation, label: str) -> None:
    value = ev.site.labels.get(label)
    if value is None:
        ev.problems.append(f"no label {label!r} (policy weighted)")
    elif _number(value) is None:
        ev.problems.append(f"label {label}={value!r} is not a number (policy weighted)")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _component(policy: str, ev: Evaluation, placement: ServerPlacement, lowest: float) -> float:
    """The policy's own measure in [0, 1), higher is better; adds its reason to the notes."""
    slots = ev.slots
    if policy in ("pack", "explicit"):
        if slots is None:
            return 0.0
        ev.notes.append(f"pack: room for {slots} server(s); fuller sites first")
        return 1.0 / (1 + slots)
    if policy == "spread":
        if slots is None:
            return 0.0
        ev.notes.append(f"spread: room for {slots} server(s); emptier sites first")
        return 1.0 - 1.0 / (1 + slots)
    if policy == "nearest":
        near = placement.near
        if near is None or ev.site.latitude is None or ev.site.longitude is None:
            ev.notes.append("nearest: the site has no location: ranked last")
            ev.penalty += PENALTY
            return 0.0
        km = distance_km(near.latitude, near.longitude, ev.site.latitude, ev.site.longitude)
        ev.notes.append(f"nearest: {km:.0f} km away")
        return 1.0 / (1 + km / 100)
    value = _number(ev.site.labels.get(placement.weight_label or "", "")) or 0.0
    ev.notes.append(f"weighted: {placement.weight_label}={value:g} (lower wins)")
    return 1.0 / (1 + value - lowest)


def _rank(policy: str, evaluations: list[Evaluation], placement: ServerPlacement,
          explicit: str | None) -> list[Evaluation]:
    weights = [_number(e.site.labels.get(placement.weight_label or "", "")) for e in evaluations]
    lowest = min((w for w in weights if w is not None), default=0.0)
    own = "pack" if policy == "explicit" else policy
    for ev in evaluations:
        ev.score = _component(own, ev, placement, lowest) - ev.penalty
        if ev.site.id == explicit:
            ev.notes.insert(0, "the site asked for")
    return sorted(evaluations, key=lambda e: (e.site.id != explicit, -e.score, e.site.name))


def _global_slots(ctx: Context) -> int | None:
    return _quota_fit(ctx.quota.global_headroom, ctx.reference)[0]


def _assign(policy: str, ranked: list[Evaluation], request: BootRequest,
            global_slots: int | None) -> tuple[list[str], str | None]:
    count, min_sites = request.count, request.placement.min_sites
    if not ranked:
        return [], "no site can take the servers (see excluded)"
    if global_slots is not None and global_slots < count:
        return [], f"the project's global quota leaves room for {global_slots} of the {count} servers"
    if policy == "spread":
        if len(ranked) < min_sites:
            return [], f"spread over at least {min_sites} sites, but only {len(ranked)} site(s) are candidates"
        if count < min_sites:
            return [], f"spread over at least {min_sites} sites needs at least {min_sites} servers (count {count})"
        out = _round_robin(ranked, count)
    else:
        out = _fill(ranked, count)
    if len(out) < count:
        return [], f"the candidates have room for {len(out)} of the {count} servers"
    return out, None


def _fill(ranked: list[Evaluation], count: int) -> list[str]:
    """The best site up to its room, then the next."""
    out: list[str] = []
    for ev in ranked:
        take = count - len(out) if ev.slots is None else min(ev.slots, count - len(out))
        out.extend([ev.site.id] * take)
        if len(out) == count:
            break
    return out


def _round_robin(ranked: list[Evaluation], count: int) -> list[str]:
    """One server per site in rank order, round after round, skipping full sites."""
    left = {ev.site.id: ev.slots for ev in ranked}
    out: list[str] = []
    while len(out) < count:
        placed = 0
        for ev in ranked:
            room = left[ev.site.id]
            if len(out) == count or (room is not None and room <= 0):
                continue
            out.append(ev.site.id)
            left[ev.site.id] = None if room is None else room - 1
            placed += 1
        if placed == 0:
            break
    return out


def _candidate(ev: Evaluation, zone: str | None) -> Candidate:
    free = ev.site.free
    image = ev.image or image_rules.Route("present", None, "")
    # built without validation: every field is typed here already, and a plan may carry thousands
    return Candidate.model_construct(
        site_id=ev.site.id, site_name=ev.site.name, availability_zone=zone, score=round(ev.score, 4),
        free=dict(free) if free is not None else {}, quota_headroom=dict(ev.headroom), image=image.how,
        reasons=[*ev.notes, image.reason] if image.reason else list(ev.notes), slots=ev.slots,
        flavor_id=ev.flavor.remote_id if ev.flavor else None, image_id=image.remote_id)
