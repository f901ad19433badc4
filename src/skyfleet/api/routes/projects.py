"""/v1/projects/{project}/mappings: where a global project lives on each site.

Tenants read their own project's mappings, admins any; only admins set or remove explicit ones.
The listing shows every managed site with how the rule resolves there (explicit, shared Keystone,
or by name in the site, which a reconcile kind looks up when it needs it).
"""

from __future__ import annotations

from fastapi import APIRouter, status

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.projects import service as projects
from skyfleet.domains.projects.schemas import MappingList, MappingOut, MappingSet
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.errors import NotFound

router = APIRouter(prefix="/v1/projects", tags=["projects"], dependencies=CLEAN_URL)


@router.get("/{project_id}/mappings", response_model=MappingList)
def list_mappings(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> MappingList:
    """How ``project_id`` resolves on every managed site."""
    home = runtime.settings.home_auth_url
    with transaction(runtime.factory) as session:
        explicit = {m.site_id: m for m, _ in projects.list_mappings(session, project_id=project_id)}
        rows = session.scalars(sites.site_query(sites.SiteFilter(managed=True)).order_by(Site.name))
        out = []
        for site in rows:
            found = explicit.get(site.id)
            if found is not None:
                out.append(MappingOut(project_id=project_id, site_id=site.id, site_name=site.name,
                                      remote_project_id=found.remote_project_id, source=projects.EXPLICIT,
                                      created_at=found.created_at, updated_at=found.updated_at))
            elif projects.shares_home_keystone(site, home):
                out.append(MappingOut(project_id=project_id, site_id=site.id, site_name=site.name,
                                      remote_project_id=project_id, source=projects.SHARED))
            else:
                out.append(MappingOut(project_id=project_id, site_id=site.id, site_name=site.name,
                                      remote_project_id="", source=projects.BY_NAME))
        return MappingList(project_id=project_id, mappings=out)


@router.put("/{project_id}/mappings/{site}", response_model=MappingOut)
def set_mapping(project_id: str, site: str, body: MappingSet, runtime: RuntimeDep,
                principal: PrincipalDep) -> MappingOut:
    """Record that ``project_id`` is ``remote_project_id`` on ``site`` (admins)."""
    with transaction(runtime.factory) as session:
        target = sites.get_site(session, site)
        row = projects.set_mapping(session, project_id=project_id, site_id=target.id,
                                   remote_project_id=body.remote_project_id, now=utcnow())
        return MappingOut(project_id=project_id, site_id=target.id, site_name=target.name,
                          remote_project_id=row.remote_project_id, source=projects.EXPLICIT,
                          created_at=row.created_at, updated_at=row.updated_at)


@router.delete("/{project_id}/mappings/{site}", status_code=status.HTTP_204_NO_CONTENT)
def delete_mapping(project_id: str, site: str, runtime: RuntimeDep, principal: PrincipalDep) -> None:
    """Forget the explicit mapping; the rule applies again (admins)."""
    with transaction(runtime.factory) as session:
        target = sites.get_site(session, site)
        if not projects.delete_mapping(session, project_id=project_id, site_id=target.id):
            raise NotFound(f"project {project_id!r} has no explicit mapping on site {target.name}")
