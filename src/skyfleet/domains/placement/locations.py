"""Where the caller can run: ``GET /v1/locations``, one page of sites with what a boot there may use.

Why it exists: the first half of the two-level choice (a data centre, then one of its availability
zones) has to be data a dashboard or the CLI can show, and it must agree with ``plan``: the same
facts (:mod:`.facts`), the same flavor and image rules (:mod:`.images`). Tenants see managed sites
that are online or degraded (an offline or never-probed site cannot take a boot); fleet admins see
every site. A tenant's images and quota are its own; nothing of another project is shown.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.placement import facts
from skyfleet.domains.placement import images as image_rules
from skyfleet.domains.placement.facts import SiteFacts
from skyfleet.domains.placement.schemas import Location, LocationFlavor, LocationImage
from skyfleet.domains.selectors import Requirement
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site

USABLE = ("online", "degraded")


def list_locations(session: Session, *, project_id: str | None, is_admin: bool, selector: list[Requirement],
                   group: str | None, limit: int, marker: str | None) -> tuple[list[Location], str | None]:
    """One page of locations by site name; ``marker`` is the last name (or id) of the previous page."""
    filters = sites.SiteFilter(selector=selector, group=group, managed=None if is_admin else True,
                               availability=() if is_admin else USABLE)
    page, next_marker = sites.list_sites(session, filters=filters, limit=limit, marker=marker)
    if not page:
        return [], next_marker
    scope = select(Site.id).where(Site.id.in_([s.id for s in page]))
    site_facts = facts.load_sites(session, scope)
    facts.add_capacity(site_facts, facts.capacity_by_site(session, scope))
    facts.add_zones(session, site_facts, facts.zones_by_site(session, scope))
    facts.add_projects(session, site_facts, project_id=project_id)
    flavors = facts.flavors(session, scope)
    on_sites = facts.images(session, scope)
    declared = image_rules.visible_declared(session, project_id=project_id, is_admin=is_admin)
    quota = facts.quota(session, project_id=project_id)
    out = []
    for site in site_facts:
        usable = [f for f in flavors.get(site.id, [])
                  if f.public or is_admin or f.projects & site.projects]
        out.append(Location(
            id=site.id, name=site.name, group=site.group, labels=site.labels, latitude=site.latitude,
            longitude=site.longitude, availability=site.availability, availability_zones=site.zone_names,
            free=site.free, quota_headroom=quota.at(site.id), quota_global=dict(quota.global_headroom),
            flavors=[LocationFlavor(**f.as_dict()) for f in _distinct(usable)],
            images=_images(site, declared, on_sites.get(site.id, []), is_admin=is_admin)))
    return out, next_marker


def _distinct(found: list[facts.Flavor]) -> list[facts.Flavor]:
    seen: dict[str, facts.Flavor] = {}
    for flavor in found:
        seen.setdefault(flavor.name, flavor)
    return sorted(seen.values(), key=lambda f: (f.vcpus, f.ram, f.name))


def _images(site: SiteFacts, declared: list[image_rules.Declared], on_site: list[facts.SiteImage], *,
            is_admin: bool) -> list[LocationImage]:
    """Declared images present or copied there, then the site's own images the caller may use, by name."""
    out: dict[str, LocationImage] = {}
    for item in declared:
        route = image_rules.declared_route(item, site)
        if route is not None:
            out.setdefault(item.resource.name, LocationImage(name=item.resource.name, id=route.remote_id,
                                                             declared_id=item.resource.id, image=route.how))
    for image in on_site:
        if image.name not in out and facts.visible_image(image, projects=site.projects, is_admin=is_admin):
            out[image.name] = LocationImage(name=image.name, id=image.remote_id, image="present")
    return sorted(out.values(), key=lambda i: i.name)
