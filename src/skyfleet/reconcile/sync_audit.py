"""The periodic converge pass over every declared resource (keypairs, flavors, security groups, identity
objects, images, networks).

Each pass folds finished tasks into bindings and re-submits, for every resource, an observe -> diff ->
apply task on each placed site whose binding is idle. A site that was offline has its tasks waiting
behind the engine's circuit and catches up when it returns; a newly registered site that matches a
placement gets a binding and the resource without anyone asking; a failed binding is tried again.
Resources are processed in batches of ``batch`` per transaction. Copy jobs are not its business: the
engine starts a job's copying stage when its source read settles.

With ``skip_listed`` (what the server runs), the bindings that the drift audit (``reconcile.drift``)
compares by listing every minute are left to it: an in-sync keypair, flavor (but a private one with
an access list) or security group gets no task here, so this pass costs a site nothing for them.
Without it (a direct call), every idle binding of every kind is re-converged by a task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.sync.converge import converge
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.reconcile.drift import LISTED

log = logging.getLogger(__name__)


def listed(resource: SyncResource) -> Callable[[SyncBinding], bool] | None:
    """Which bindings of ``resource`` the drift audit compares (None: none, this pass converges them all)."""
    if resource.kind not in LISTED:
        return None
    if resource.kind == "flavor" and not resource.spec.get("is_public", True) and resource.spec.get("access"):
        return None  # an access list is not in a flavor listing
    return lambda b: b.status == "in-sync" and b.action == "ensure"


def converge_all(factory: sessionmaker[Session], *, batch: int = 50, skip_listed: bool = False) -> set[str]:
    """One pass over every desired resource; returns the ids of those that got an operation."""
    with transaction(factory) as session:
        ids = list(session.scalars(select(SyncResource.id).order_by(SyncResource.id)))
    started: set[str] = set()
    for start in range(0, len(ids), batch):
        with transaction(factory) as session:
            now = utcnow()
            for resource in session.scalars(select(SyncResource).where(
                    SyncResource.id.in_(ids[start:start + batch])).with_for_update()):
                if resource.options.get("one_shot"):
                    continue  # a copy job's resource: converged once, not kept in sync
                skip = listed(resource) if skip_listed else None
                if converge(session, resource, now=now, skip=skip) is not None:
                    started.add(resource.id)
    if started:
        log.info("sync audit: %d resource(s) had sites to converge", len(started))
    return started


def run_sync_audit(factory: sessionmaker[Session], *, batch: int = 50, skip_listed: bool = False) -> int:
    """One audit pass over every desired resource; returns how many operations it started."""
    return len(converge_all(factory, batch=batch, skip_listed=skip_listed))
