"""/v1/sites: register, find, change and delete sites (fleet admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import conflicts
from skyfleet.domains.selectors import parse_selector
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate, SiteList, SiteOut, SiteUpdate
from skyfleet.domains.sites.url_policy import check_site_url
from skyfleet.errors import Invalid
from skyfleet.reconcile.health import probe_and_record

router = APIRouter(prefix="/v1/sites", tags=["sites"], dependencies=CLEAN_URL)
AVAILABILITIES = {"online", "degraded", "offline", "unknown"}


def _probe(runtime: RuntimeDep, site_id: str) -> None:
    s = runtime.settings
    probe_and_record(runtime.factory, box=runtime.box, site_id=site_id, timeout=s.site_timeout,
                     offline_after=s.offline_after_misses, prober=runtime.prober)


def _show(runtime: RuntimeDep, ref: str) -> SiteOut:
    with transaction(runtime.factory) as session:
        return sites.to_out(sites.get_site(session, ref))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SiteOut)
def create_site(body: SiteCreate, runtime: RuntimeDep, principal: PrincipalDep,
                probe: Annotated[bool, Query(description="Authenticate and read the catalog now.")] = True,
                ) -> SiteOut:
    """Register a site. Skyfleet authenticates, reads its catalog, versions and AZs; a site that cannot
    be reached is still stored, as `unknown`, with the error text."""
    check_site_url(str(body.auth.auth_url), runtime.settings)
    with transaction(runtime.factory) as session:
        site_id = sites.create_site(session, box=runtime.box, data=body).id
    if probe and body.managed:
        _probe(runtime, site_id)
    return _show(runtime, site_id)


@router.get("", response_model=SiteList)
def list_sites(
    runtime: RuntimeDep, principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[str | None, Query(description="Name or id of the last site of the previous page")] = None,
    selector: Annotated[str | None, Query(description="Label selector, e.g. tier=edge,country!=fr")] = None,
    group: str | None = None,
    availability: Annotated[str | None, Query(description="Comma-separated availabilities")] = None,
    name: Annotated[str | None, Query(description="Substring of the name")] = None,
    managed: bool | None = None,
) -> SiteList:
    wanted = csv(availability, "availability")
    if wanted:
        unknown = set(wanted) - AVAILABILITIES
        if unknown:
            raise Invalid(f"unknown availability {sorted(unknown)}; use {sorted(AVAILABILITIES)}")
    filters = sites.SiteFilter(selector=parse_selector(selector or ""), group=group, availability=wanted,
                               name_contains=name, managed=managed)
    with transaction(runtime.factory) as session:
        rows, next_marker = sites.list_sites(session, filters=filters, limit=limit, marker=marker)
        return SiteList(sites=[sites.to_out(r) for r in rows], next_marker=next_marker)


@router.get("/{ref}", response_model=SiteOut)
def show_site(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> SiteOut:
    return _show(runtime, ref)


@router.patch("/{ref}", response_model=SiteOut)
def update_site(ref: str, body: SiteUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> SiteOut:
    """Change a site; new auth is probed at once."""
    if body.auth is not None:
        check_site_url(str(body.auth.auth_url), runtime.settings)
    with transaction(runtime.factory) as session:
        site = sites.get_site(session, ref, for_update=True)
        sites.update_site(session, box=runtime.box, site=site, data=body)
        site_id, managed = site.id, site.managed
    if body.auth is not None and managed:
        _probe(runtime, site_id)
    return _show(runtime, site_id)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_site(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    with transaction(runtime.factory) as session:
        sites.delete_site(session, site=sites.get_site(session, ref, for_update=True))
        session.flush()  # the site's addresses go with it: conflicts that needed them are cleared now
        conflicts.detect(session, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{ref}/manage", response_model=SiteOut)
def manage_site(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> SiteOut:
    """Send work to this site again (audits, sync)."""
    with transaction(runtime.factory) as session:
        site = sites.set_managed(session, site=sites.get_site(session, ref, for_update=True), managed=True)
        return sites.to_out(site)


@router.post("/{ref}/unmanage", response_model=SiteOut)
def unmanage_site(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> SiteOut:
    """Stop sending any work to this site; it stays registered."""
    with transaction(runtime.factory) as session:
        site = sites.set_managed(session, site=sites.get_site(session, ref, for_update=True), managed=False)
        return sites.to_out(site)
