"""What a one-shot copy's source holds now: Kingbird's os-sync answers 404 when a named resource is
not in the source region, before any job exists.

Why it exists: a job's own ``sync.read`` task runs later in the engine, so without this check a
typo surfaced only as ``FAILURE`` rows. The check reads the source site once, with the same readers
and the same owner (user, project) the job's read task uses; a site that cannot be read leaves the
verdict to the job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sync import jobs
from skyfleet.domains.sync.converge import owner_refs
from skyfleet.domains.sync.service import Caller
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError
from skyfleet.reconcile.kinds import SiteContext
from skyfleet.reconcile.kinds.sync_read import READERS, ReadPayload
from skyfleet.secrets import SecretBox


def missing_in_source(factory: sessionmaker[Session], box: SecretBox, *, resource_type: str, names: list[str],
                      source: str, caller: Caller, timeout: float, pool: SitePool | None = None) -> list[str] | None:
    """The ``names`` the source site does not have (None: the site could not be read). An unknown
    source is :class:`~skyfleet.errors.Invalid`, as at job creation."""
    with transaction(factory) as session:
        site = jobs.find_site(session, source)
        site_id, site_name, auth = site.id, site.name, sites.decrypt_auth(box, site)
    payload = ReadPayload.model_validate({"resource_type": resource_type, "names": names,
                                          **owner_refs(resource_type, caller.owner())})
    ctx = SiteContext(site_id=site_id, site_name=site_name, auth=auth, timeout=timeout, pool=pool or SitePool())
    reader: Any = READERS[resource_type]
    try:
        return [name for name in payload.names if reader(ctx, payload, name) is None]
    except SiteError:
        return None
