"""Seed what placement reads: sites with labels and location, their inventory (hypervisors, zones,
flavors, images, stored as a refresh stores them), a project's quota, and declared images."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteState
from skyfleet.domains.sites.models import Site, SiteLabel
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.drivers.base import Record

SMALL = {"id": "f1", "name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 20}


def hypervisor(n: int, vcpus: int, ram_mb: int, disk_gb: int, *, used: tuple[int, int, int] = (0, 0, 0),
               state: str = "up") -> Record:
    return Record(kind="hypervisors", remote_id=str(n), project_id=None, name=f"hv{n}", status=state,
                  data={"vcpus": vcpus, "vcpus_used": used[0], "memory_mb": ram_mb, "memory_mb_used": used[1],
                        "local_gb": disk_gb, "local_gb_used": used[2]})


def flavor(spec: dict[str, Any], *, public: bool = True, projects: tuple[str, ...] = ()) -> Record:
    data = {"vcpus": spec["vcpus"], "ram": spec["ram"], "disk": spec["disk"], "is_public": public}
    if projects:
        data["projects"] = list(projects)
    return Record(kind="flavors", remote_id=spec["id"], project_id=None, name=spec["name"], status=None, data=data)


def image(remote_id: str, name: str, *, owner: str | None = None, visibility: str = "public",
          status: str = "active") -> Record:
    return Record(kind="images", remote_id=remote_id, project_id=owner, name=name, status=status,
                  data={"visibility": visibility})


def zone(name: str, available: bool = True) -> Record:
    return Record(kind="availability_zones", remote_id=name, project_id=None, name=name,
                  status="available" if available else "unavailable")


def add_site(session: Session, name: str, *, availability: str = "online", managed: bool = True,
             labels: dict[str, str] | None = None, group: str | None = None,
             location: tuple[float, float] | None = None, hypervisors: list[Record] | None = None,
             zones: list[Record] | None = None, flavors: list[Record] | None = None,
             images: list[Record] | None = None, now: datetime | None = None) -> str:
    """One site and its inventory; ``hypervisors=None`` gives 1 hypervisor of 16 vCPU, 32 GiB, 400 GB,
    ``[]`` none at all (capacity unknown)."""
    site = Site(name=name, auth_public={}, auth_encrypted="x", availability=availability, managed=managed,
                group=group, latitude=location[0] if location else None,
                longitude=location[1] if location else None, capabilities={})
    session.add(site)
    session.flush()
    for key, value in (labels or {}).items():
        session.add(SiteLabel(site_id=site.id, key=key, value=value))
    ref = inventory.SiteRef(site.id, name)
    records = {"hypervisors": [hypervisor(1, 16, 32768, 400)] if hypervisors is None else hypervisors,
               "availability_zones": [zone("nova")] if zones is None else zones,
               "flavors": [flavor(SMALL)] if flavors is None else flavors,
               "images": [image("img-" + name, "cirros")] if images is None else images}
    for kind, rows in records.items():
        inventory.apply_records(session, site=ref, kind=kind, records=rows, now=now or utcnow(), complete=True,
                                emit=False)
    session.flush()
    return site.id


def set_quota(session: Session, project_id: str, *, limits: dict[str, int],
              sites: dict[str, tuple[dict[str, int], dict[str, int]]] | None = None,
              absent: tuple[str, ...] = ()) -> None:
    """A global quota for ``project_id``; ``sites``: site id -> (usage, limits) as a collection saw them."""
    session.add(QuotaProject(project_id=project_id, mode="hard", policy="proportional", weights={},
                             overrides=dict(limits), breached={}, unmapped={}, domain_name="Default"))
    for site_id, (usage, site_limits) in (sites or {}).items():
        session.add(QuotaSiteState(project_id=project_id, site_id=site_id, usage=usage, limits=site_limits,
                                   applied={}, pending={}, absent=site_id in absent, observed_at=utcnow()))
    session.flush()


def declare_image(session: Session, name: str, *, project_id: str, mode: str, placement: dict[str, Any] | None = None,
                  in_sync: dict[str, str] | None = None, visibility: str = "private") -> str:
    """A declared image of ``project_id``; ``in_sync``: site id -> remote id of an in-sync copy."""
    resource = SyncResource(kind="image", name=name, scope=project_id, owner={}, placement=placement or {},
                            spec={"name": name, "visibility": visibility,
                                  "source": {"site_id": "x", "image_id": "src"}},
                            options={"mode": mode}, state="active", generation=1)
    session.add(resource)
    session.flush()
    for site_id, remote in (in_sync or {}).items():
        session.add(SyncBinding(resource_id=resource.id, site_id=site_id, site_name=site_id, status="in-sync",
                                remote_id=remote, generation=1))
    session.flush()
    return resource.id
