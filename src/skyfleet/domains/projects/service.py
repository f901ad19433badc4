"""The project mapping rule, in one place for every feature.

A global project is a project of the home Keystone. On site S it is, in this order:

1. the explicit mapping (project, S) when an admin recorded one;
2. the same project id when S shares the home Keystone (its ``auth_url`` is the home Keystone's);
3. otherwise the project with the same name in the same-named domain of S's own Keystone. That
   look-up is a call to the site, so it happens inside a reconcile kind, never here.

Keyword-only functions over an explicit session; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.sites.models import Site

EXPLICIT, SHARED, BY_NAME = "explicit", "shared-keystone", "by-name"


def _norm_url(url: str | None) -> str:
    root = (url or "").strip().rstrip("/")
    return root[:-3].rstrip("/") if root.endswith("/v3") else root


def shares_home_keystone(site: Site, home_auth_url: str) -> bool:
    """True when the site authenticates at the home Keystone (so project ids are the same)."""
    home = _norm_url(home_auth_url)
    return bool(home) and _norm_url(str(site.auth_public.get("auth_url", ""))) == home


def explicit_mapping(session: Session, *, project_id: str, site_id: str) -> str | None:
    """The remote project id an admin set for (project, site), or None."""
    return session.scalar(select(ProjectMapping.remote_project_id).where(
        ProjectMapping.project_id == project_id, ProjectMapping.site_id == site_id))


def explicit_mappings(session: Session, *, project_ids: list[str]) -> dict[tuple[str, str], str]:
    """Every explicit mapping of ``project_ids``: (project_id, site_id) -> remote project id."""
    if not project_ids:
        return {}
    rows = session.execute(select(ProjectMapping.project_id, ProjectMapping.site_id,
                                  ProjectMapping.remote_project_id)
                           .where(ProjectMapping.project_id.in_(project_ids)))
    return {(p, s): r for p, s, r in rows}


@dataclass(frozen=True)
class Resolution:
    """How the project is found on one site: a known id, or a by-name look-up left to a kind."""

    remote_project_id: str | None
    source: str


def rule(*, project_id: str, site: Site, home_auth_url: str, explicit: str | None) -> Resolution:
    """The rule, given the explicit mapping already read (callers that resolve many projects batch it)."""
    if explicit is not None:
        return Resolution(explicit, EXPLICIT)
    if shares_home_keystone(site, home_auth_url):
        return Resolution(project_id, SHARED)
    return Resolution(None, BY_NAME)


def resolve(session: Session, *, project_id: str, site: Site, home_auth_url: str) -> Resolution:
    """Apply the rule as far as it can go without calling the site."""
    return rule(project_id=project_id, site=site, home_auth_url=home_auth_url,
                explicit=explicit_mapping(session, project_id=project_id, site_id=site.id))


def set_mapping(session: Session, *, project_id: str, site_id: str, remote_project_id: str,
                now: datetime | None = None) -> ProjectMapping:
    """Create or replace the explicit mapping (flushed, not committed)."""
    now = now or utcnow()
    row = session.get(ProjectMapping, (project_id, site_id))
    if row is None:
        row = ProjectMapping(project_id=project_id, site_id=site_id, remote_project_id=remote_project_id,
                             created_at=now, updated_at=now)
        session.add(row)
    else:
        row.remote_project_id, row.updated_at = remote_project_id, now
    session.flush()
    return row


def delete_mapping(session: Session, *, project_id: str, site_id: str) -> bool:
    """Drop the explicit mapping; True when there was one."""
    result = session.execute(delete(ProjectMapping).where(
        ProjectMapping.project_id == project_id, ProjectMapping.site_id == site_id))
    return bool(getattr(result, "rowcount", 0))


def list_mappings(session: Session, *, project_id: str) -> list[tuple[ProjectMapping, str]]:
    """Explicit mappings of one project with the site name, by site name."""
    rows = session.execute(select(ProjectMapping, Site.name).join(Site, Site.id == ProjectMapping.site_id)
                           .where(ProjectMapping.project_id == project_id).order_by(Site.name))
    return [(m, name) for m, name in rows.all()]
