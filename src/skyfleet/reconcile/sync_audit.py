"""The periodic drift audit of desired keypairs, flavors and security groups.

Each pass folds finished tasks into bindings and re-submits, for every resource, an observe ->
diff -> apply task on each placed site whose binding is idle. The kinds re-read the site, so an
out-of-band delete or change is repaired within one audit interval; a site that was offline has
its tasks waiting behind the engine's circuit and catches up when it returns; a newly registered
site that matches a placement gets a binding and the resource without anyone asking. Resources are
processed in batches of ``batch`` per transaction. Copy jobs are not its business: the engine
starts a job's copying stage when its source read settles.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.sync.converge import converge
from skyfleet.domains.sync.models import SyncResource

log = logging.getLogger(__name__)


def run_sync_audit(factory: sessionmaker[Session], *, batch: int = 50) -> int:
    """One audit pass over every desired resource; returns how many operations it started."""
    with transaction(factory) as session:
        ids = list(session.scalars(select(SyncResource.id).order_by(SyncResource.id)))
    started = 0
    for start in range(0, len(ids), batch):
        with transaction(factory) as session:
            now = utcnow()
            for resource in session.scalars(select(SyncResource).where(
                    SyncResource.id.in_(ids[start:start + batch])).with_for_update()):
                if resource.options.get("one_shot"):
                    continue  # a copy job's resource: converged once, not kept in sync
                if converge(session, resource, now=now) is not None:
                    started += 1
    if started:
        log.info("sync audit: %d resource(s) had sites to converge", started)
    return started
