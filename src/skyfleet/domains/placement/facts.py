"""What a placement decision reads, loaded for many sites in a bounded number of queries.

Why it exists: ``plan`` and ``GET /v1/locations`` rank or show up to thousands of sites. Each fact
(the sites and their labels, the global view's hypervisor capacity, availability zones, flavors and
images, the caller's project on each site, its quota) is one query over every site in scope, never
a query per site, so a decision costs the same dozen statements whether the fleet has 3 sites or
3,000. Everything here reads Skyfleet's own store; no site is called.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from skyfleet.domains.inventory.models import InventoryItem
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.sites.models import Site, SiteLabel

#: The quota resources a boot consumes, and the flavor field each one is counted in.
QUOTA_KEYS = ("instances", "cores", "ram")
Headroom = dict[str, int | None]  # resource -> what is left (None: no limit known)


@dataclass(slots=True)
class SiteFacts:
    """One site as a placement decision sees it."""

    id: str
    name: str
    group: str | None
    latitude: float | None
    longitude: float | None
    availability: str
    managed: bool
    labels: dict[str, str] = field(default_factory=dict)
    probed_zones: list[str] = field(default_factory=list)  # from the health probe, when no zone rows exist
    free: dict[str, int] | None = None  # vcpus, ram_mb, disk_gb free; None: no hypervisor row (unknown)
    zones: dict[str, bool] = field(default_factory=dict)  # zone name -> available
    projects: frozenset[str] = frozenset()  # the caller's project ids on this site (often one shared set)

    @property
    def zone_names(self) -> list[str]:
        """The availability zones a boot may name: the inventory's available ones, else the probe's."""
        if self.zones:
            return sorted(name for name, up in self.zones.items() if up)
        return sorted(self.probed_zones)


SITE_COLUMNS = (Site.id, Site.name, Site.group, Site.latitude, Site.longitude, Site.availability, Site.managed)


def run(session: Session, query: Any) -> Any:
    """Rows of a column query straight from the connection: the ORM's result machinery is not needed
    for plain columns and costs a third of a decision over a thousand sites. (The caller flushes.)"""
    return session.connection().execute(query)


def load_sites(session: Session, scope: Select[Any], *, label_keys: Collection[str] | None = None
               ) -> list[SiteFacts]:
    """The sites ``scope`` (a query of site ids) selects, by name, with their labels (every label, or
    only the keys in ``label_keys``) (two queries)."""
    rows = run(session, select(*SITE_COLUMNS).where(Site.id.in_(scope)).order_by(Site.name)).all()
    facts = [SiteFacts(id=r[0], name=r[1], group=r[2], latitude=r[3], longitude=r[4], availability=r[5],
                       managed=bool(r[6])) for r in rows]
    by_id = {f.id: f for f in facts}
    labels = select(SiteLabel.site_id, SiteLabel.key, SiteLabel.value).where(SiteLabel.site_id.in_(scope))
    if label_keys is not None:
        labels = labels.where(SiteLabel.key.in_(sorted(label_keys)))
    if by_id and (label_keys is None or label_keys):
        for site_id, key, value in run(session, labels):
            if site_id in by_id:
                by_id[site_id].labels[key] = value
    return facts


def _probed_zones(capabilities: Any) -> list[str]:
    zones = (capabilities or {}).get("availability_zones") if isinstance(capabilities, dict) else None
    return [str(z) for z in zones or [] if isinstance(z, str)]


def _items(session: Session, scope: Select[Any] | None, kind: str, *columns: Any) -> Select[Any]:
    """Rows of ``kind`` of the sites ``scope`` selects (None: of every site)."""
    query = select(InventoryItem.site_id, *columns).where(InventoryItem.kind == kind)
    return query if scope is None else query.where(InventoryItem.site_id.in_(scope))


def _number(column: Any, key: str) -> Any:
    """``column[key]`` as an integer, extracted by the database (no JSON decoded in Python)."""
    return func.coalesce(column[key].as_integer(), 0)


def _free(total: str, used: str) -> Any:
    """Free units on a site: the sum over its hypervisors that are not down."""
    up = or_(InventoryItem.status.is_(None), InventoryItem.status != "down")
    return func.sum(case((up, _number(InventoryItem.data, total) - _number(InventoryItem.data, used)), else_=0))


def capacity_by_site(session: Session, scope: Select[Any] | None) -> dict[str, dict[str, int]]:
    """Site id -> free vcpus, ram_mb and disk_gb, summed in SQL over the hypervisors that are not down
    (one query); a site with no hypervisor row is absent (capacity unknown)."""
    query = (_items(session, scope, "hypervisors", _free("vcpus", "vcpus_used"), _free("memory_mb", "memory_mb_used"),
                    _free("local_gb", "local_gb_used"))
             .group_by(InventoryItem.site_id))
    return {site_id: {"vcpus": max(0, _int(vcpus)), "ram_mb": max(0, _int(ram)), "disk_gb": max(0, _int(disk))}
            for site_id, vcpus, ram, disk in run(session, query)}


def add_capacity(sites: list[SiteFacts], capacity: dict[str, dict[str, int]]) -> None:
    """Set each site's free capacity from ``capacity_by_site`` (shared, never changed here)."""
    for site in sites:
        site.free = capacity.get(site.id)


def zones_by_site(session: Session, scope: Select[Any] | None) -> dict[str, dict[str, bool]]:
    """Site id -> the inventory's availability zones (name -> available) (one query)."""
    out: dict[str, dict[str, bool]] = {}
    for site_id, name, status in run(session, _items(session, scope, "availability_zones", InventoryItem.name,
                                                     InventoryItem.status)):
        if name:
            out.setdefault(site_id, {})[name] = status != "unavailable"
    return out


def add_zones(session: Session, sites: list[SiteFacts], zones: dict[str, dict[str, bool]]) -> None:
    """The availability zones of the inventory, else those the last health probe read (one query for
    the sites without zone rows)."""
    by_id = {s.id: s for s in sites}
    for site in sites:
        site.zones = dict(zones.get(site.id, {}))
    unzoned = [s.id for s in sites if not s.zones]
    if unzoned:  # the zones the last health probe read, for sites whose inventory has none
        for site_id, capabilities in run(session, select(Site.id, Site.capabilities).where(Site.id.in_(unzoned))):
            by_id[site_id].probed_zones = _probed_zones(capabilities)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Flavor:
    remote_id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    public: bool
    projects: frozenset[str]  # projects given access, when the inventory knows them

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vcpus": self.vcpus, "ram": self.ram, "disk": self.disk}


def flavors(session: Session, scope: Select[Any] | None, *, name: str | None = None) -> dict[str, list[Flavor]]:
    """Site id -> the flavors of the inventory (only those named ``name`` if given), by name (one query;
    the fields are extracted by the database, and the access list is read for private flavors only)."""
    data = InventoryItem.data
    public = func.coalesce(data["is_public"].as_boolean(), True)
    query = _items(session, scope, "flavors", InventoryItem.remote_id, InventoryItem.name, _number(data, "vcpus"),
                   _number(data, "ram"), _number(data, "disk"), public,
                   case((public.is_(False), data["projects"]), else_=None))
    if name is not None:
        query = query.where(InventoryItem.name == name)
    out: dict[str, list[Flavor]] = {}
    for site_id, remote_id, flavor_name, vcpus, ram, disk, is_public, access in run(session,
            query.order_by(InventoryItem.name)):
        projects = frozenset(str(p) for p in access if isinstance(p, str)) if isinstance(access, list) else frozenset()
        out.setdefault(site_id, []).append(Flavor(remote_id=remote_id, name=flavor_name or remote_id, vcpus=_int(vcpus),
                                                  ram=_int(ram), disk=_int(disk), public=bool(is_public),
                                                  projects=projects))
    return out


def usable_flavor(found: Iterable[Flavor], *, projects: AbstractSet[str], is_admin: bool) -> Flavor | None:
    """The first flavor the caller may boot: public, or private with the caller's project in its access
    list (fleet admins: any)."""
    for flavor in found:
        if flavor.public or is_admin or (flavor.projects & projects):
            return flavor
    return None


@dataclass(frozen=True)
class SiteImage:
    remote_id: str
    name: str
    project_id: str | None
    visibility: str | None


def images(session: Session, scope: Select[Any] | None, *,
           names: Iterable[str] | None = None) -> dict[str, list[SiteImage]]:
    """Site id -> active images of the inventory (only those named in ``names`` if given) (one query)."""
    query = _items(session, scope, "images", InventoryItem.remote_id, InventoryItem.name, InventoryItem.project_id,
                   InventoryItem.data["visibility"].as_string()).where(InventoryItem.status == "active")
    if names is not None:
        query = query.where(InventoryItem.name.in_(sorted(set(names))))
    out: dict[str, list[SiteImage]] = {}
    for site_id, remote_id, name, project, visibility in run(session, query.order_by(InventoryItem.name)):
        out.setdefault(site_id, []).append(SiteImage(remote_id, name or remote_id, project, visibility))
    return out


def visible_image(image: SiteImage, *, projects: AbstractSet[str], is_admin: bool) -> bool:
    """Whether the caller may boot ``image`` on its site: its mapped project owns it, or it is public or
    community (fleet admins: any)."""
    return is_admin or image.visibility in ("public", "community") or (
        image.project_id is not None and image.project_id in projects)


def add_projects(session: Session, sites: list[SiteFacts], *, project_id: str | None) -> None:
    """The caller's project on each site: the same id (a shared Keystone), an explicit mapping, or the id
    a quota collection found by name (two queries)."""
    if project_id is None:
        return
    by_id = {s.id: s for s in sites}
    same = frozenset({project_id})  # one set shared by every site: a thousand sites, one allocation
    for site in sites:
        site.projects = same
    pairs: list[tuple[str, str | None]] = [
        (r[0], r[1]) for r in run(session, select(ProjectMapping.site_id, ProjectMapping.remote_project_id)
                                              .where(ProjectMapping.project_id == project_id))]
    pairs += [(r[0], r[1]) for r in run(session, select(QuotaSiteState.site_id, QuotaSiteState.remote_project_id)
                             .where(QuotaSiteState.project_id == project_id,
                                    QuotaSiteState.remote_project_id.is_not(None)))]
    for site_id, remote in pairs:
        if site_id in by_id and remote:
            by_id[site_id].projects = by_id[site_id].projects | {remote}


@dataclass
class QuotaFacts:
    """The caller's quota headroom: global (None: the project has no global quota) and per site."""

    global_headroom: Headroom
    sites: dict[str, Headroom]
    absent: set[str]  # sites whose Keystone knows no such project: the caller cannot boot there

    def at(self, site_id: str) -> Headroom:
        """What the caller may still use on the site: the smaller of the global and the site's headroom
        (computed once per site per decision: it is asked for every site of a thousand)."""
        found = self._at.get(site_id)
        if found is None:
            site = self.sites.get(site_id, {})
            found = self._at[site_id] = {k: _least(self.global_headroom.get(k), site.get(k)) for k in QUOTA_KEYS}
        return found

    def __post_init__(self) -> None:
        self._at: dict[str, Headroom] = {}


def _least(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _left(limit: Any, used: Any) -> int | None:
    if limit is None:
        return None
    limit = limit if type(limit) is int else _int(limit)
    return None if limit < 0 else max(0, limit - (used if type(used) is int else _int(used)))


def quota(session: Session, *, project_id: str | None) -> QuotaFacts:
    """The caller's headroom from the global quota and each site's last observation (three queries).

    Global: the effective limit minus the usage summed over sites, for a project under global quota.
    Per site: the limit the site reported minus its usage there, when the site was observed."""
    empty: Headroom = dict.fromkeys(QUOTA_KEYS)
    if project_id is None:
        return QuotaFacts(global_headroom=empty, sites={}, absent=set())
    columns = [QuotaSiteState.site_id, QuotaSiteState.absent,
               *(QuotaSiteState.usage[k].as_integer() for k in QUOTA_KEYS),
               *(QuotaSiteState.limits[k].as_integer() for k in QUOTA_KEYS)]
    rows = run(session, select(*columns).where(QuotaSiteState.project_id == project_id)).all()
    n = len(QUOTA_KEYS)
    # plain tuples, one pass: a thousand sites' rows are read for every decision
    states = [(r[0], tuple(_int(u) for u in r[2:2 + n]), r[2 + n:], bool(r[1])) for r in rows]
    per_site = {site_id: dict(zip(QUOTA_KEYS, map(_left, limits, usage), strict=True))
                for site_id, usage, limits, _ in states}
    absent = {site_id for site_id, _, _, gone in states if gone}
    row = session.get(QuotaProject, project_id)
    if row is None:
        return QuotaFacts(global_headroom=empty, sites=per_site, absent=absent)
    limits = quotas.stacked_limits(quotas.class_limits(session), row)
    used = {k: sum(usage[i] for _, usage, _, _ in states) for i, k in enumerate(QUOTA_KEYS)}
    return QuotaFacts(global_headroom={k: _left(limits.get(k), used[k]) for k in QUOTA_KEYS}, sites=per_site,
                      absent=absent)
