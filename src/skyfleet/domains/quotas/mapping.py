"""Where a global quota applies: the sites its project maps to, the sites it does not, and the
warnings and ``quota.unmapped`` events that say so.

Why it exists: a quota on a project id that no site knows used to be accepted and synced with
every answer 200 while each site kept its own limits. Skyfleet must never report that as success:
the answers of set and sync carry ``warnings``, show and usage list the unmapped sites, and a
collection that fails to find the project on a site records a ``quota.unmapped`` event.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyfleet.domains.events import service as events
from skyfleet.domains.projects import service as projects
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.quotas.schemas import UnmappedSite
from skyfleet.domains.sites.models import Site

UNMAPPED = "not mapped on this site"  # how a collection's error starts when the project was not found
NOT_LOOKED_UP = "not looked up yet: the next collection looks for its id, then its name, in the site's Keystone"


def unmapped_sites(session: Session, *, project_id: str, home_auth_url: str) -> list[UnmappedSite]:
    """The managed sites where the project has no known id (by the mapping rule, or found by a collection)."""
    sites = list(session.scalars(select(Site).where(Site.managed.is_(True)).order_by(Site.name)))
    states = {s.site_id: s for s in session.scalars(select(QuotaSiteState)
                                                    .where(QuotaSiteState.project_id == project_id))}
    explicit = projects.explicit_mappings(session, project_ids=[project_id])
    out = []
    for site in sites:
        rule = projects.rule(project_id=project_id, site=site, home_auth_url=home_auth_url,
                             explicit=explicit.get((project_id, site.id)))
        state = states.get(site.id)
        if rule.remote_project_id is not None or (state is not None and state.remote_project_id):
            continue
        looked_up = state is not None and bool(state.last_error)
        out.append(UnmappedSite(site_id=site.id, site_name=site.name,
                                reason=(state.last_error or "") if looked_up and state else NOT_LOOKED_UP,
                                absent=bool(state.absent) if state else False))
    return out


def warnings(session: Session, *, project_id: str, home_auth_url: str) -> tuple[list[str], list[UnmappedSite]]:
    """What to tell whoever set or synced the project's quota about where it applies."""
    unmapped = unmapped_sites(session, project_id=project_id, home_auth_url=home_auth_url)
    if not unmapped:
        return [], []
    total = session.scalar(select(func.count()).select_from(Site).where(Site.managed.is_(True)))
    names = ", ".join(u.site_name for u in unmapped)
    if len(unmapped) == total:
        text = (f"project {project_id!r} maps to no site yet ({names}): its global quota is enforced nowhere "
                "and every site keeps its own limits. Give the project's name (project_name, domain_name) "
                "or map it explicitly (PUT /v1/projects/{id}/mappings/{site}).")
    else:
        text = (f"project {project_id!r} is not mapped on {len(unmapped)} site(s): {names}; each still counts at "
                "what it may enforce by default, and no limit is written there.")
    return [text], unmapped


def note_unmapped(session: Session, *, project_ids: Collection[str], now: datetime) -> None:
    """After a collection: a ``quota.unmapped`` event when a project is newly found on no site or on
    fewer sites than before (once per change of the set of sites where it was not found)."""
    if not project_ids:
        return
    rows = session.execute(select(QuotaSiteState.project_id, QuotaSiteState.site_id, QuotaSiteState.remote_project_id,
                                  QuotaSiteState.last_error, Site.name)
                           .join(Site, Site.id == QuotaSiteState.site_id)
                           .where(QuotaSiteState.project_id.in_(list(project_ids)), Site.managed.is_(True))).all()
    missing: dict[str, dict[str, str]] = {p: {} for p in project_ids}
    mapped: dict[str, int] = dict.fromkeys(project_ids, 0)
    for project_id, site_id, remote, error, name in rows:
        if remote:
            mapped[project_id] += 1
        elif error and error.startswith(UNMAPPED):
            missing[project_id][site_id] = name
    for project in session.scalars(select(QuotaProject).where(QuotaProject.project_id.in_(list(project_ids)))):
        now_missing = missing[project.project_id]
        before = set(project.unmapped or {})
        if set(now_missing) != before:
            project.unmapped = dict(now_missing)
        new = sorted(set(now_missing) - before)
        if not new:
            continue
        where = "no site" if mapped[project.project_id] == 0 else f"{mapped[project.project_id]} site(s) only"
        events.record(session, kind="quota.unmapped", severity="warning", project_id=project.project_id, at=now,
                      details={"sites": sorted(now_missing.values()), "mapped_sites": mapped[project.project_id]},
                      message=f"the global quota of project {project.project_id} maps to {where}: not found on "
                      + ", ".join(sorted(now_missing[s] for s in new)))
