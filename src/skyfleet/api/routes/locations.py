"""/v1/locations: the data centres the caller may boot in, each with its zones, room, the caller's
quota headroom, and the flavors and images usable there.

Read from Skyfleet's store only (no site is called), so it is a plain read, not a fan-out. Tenants
see managed sites that are online or degraded, with their own images and quota; fleet admins see
every site.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.db.engine import read_only
from skyfleet.domains.placement import locations
from skyfleet.domains.placement.schemas import LocationList
from skyfleet.domains.selectors import parse_selector

router = APIRouter(prefix="/v1/locations", tags=["placement"], dependencies=CLEAN_URL)


@router.get("", response_model=LocationList)
def list_locations(
    runtime: RuntimeDep, principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[str | None, Query(description="Name or id of the last site of the previous page")] = None,
    selector: Annotated[str | None, Query(max_length=1000, description="Site labels, e.g. tier=edge")] = None,
    group: Annotated[str | None, Query(max_length=64, description="Site group")] = None,
) -> LocationList:
    """Where the caller can run, by site name: the first level of the site-then-zone choice."""
    requirements = parse_selector(selector or "")
    with read_only(runtime.factory) as session:
        rows, next_marker = locations.list_locations(
            session, project_id=principal.project_id, is_admin=principal.is_admin, selector=requirements,
            group=group, limit=limit, marker=marker)
    return LocationList(locations=rows, next_marker=next_marker)
