"""The drift audit: one listing per site per kind compares every declared keypair, flavor and security group.

Why it exists: re-converging each declared resource on each site through its own task costs at least one
site call per resource per site per cycle (100 keypairs on 1,000 sites: 100,000 tasks), so the audit could
only run every few minutes. Here each online site is read with one listing per kind (per owning user for
keypairs, per owning project for security groups: one for a fleet admin's resources), the bindings Skyfleet
holds ``in-sync`` are compared with what the listing shows, and only the (resource, site) pairs that
drifted get a converge task, restricted to those sites. Nothing is written for a site that did not drift.

Sites are read on a bounded thread pool, each read behind a background slot of the process's priority
lanes (``reconcile.lanes``), and handled in chunks: one transaction reads a chunk's bindings, one
transaction submits the chunk's repairs. None of these kinds offers a change feed that shows deletions
(Nova keypairs and flavors have no ``changes-since``; Neutron's ``changed_since`` leaves deleted groups
out, so it would take a second, id-only listing), so the listing is a full one; it is one call per kind
for a site with up to 1,000 of them.

Not compared here (the periodic converge pass, ``reconcile.sync_audit``, covers them): bindings that are
not ``in-sync`` (failed, pending, out-of-sync), sites without a binding yet, the access list of a private
flavor, and the kinds without a listing form here (identity objects, images, networks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import SUCCEEDED, Task
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.converge import converge, owner_refs
from skyfleet.domains.sync.models import ACTIVE, SyncBinding, SyncResource
from skyfleet.drivers.openstack import syncapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import SiteError
from skyfleet.logs import SECRETS, redact
from skyfleet.reconcile.kinds.sync_common import same_public_key
from skyfleet.reconcile.kinds.sync_flavor import FlavorSync
from skyfleet.reconcile.kinds.sync_flavor import listed_drift as flavor_drift
from skyfleet.reconcile.kinds.sync_keypair import KeypairSync
from skyfleet.reconcile.kinds.sync_secgroup import SecurityGroupSync
from skyfleet.reconcile.kinds.sync_secgroup import listed_drift as group_drift
from skyfleet.reconcile.lanes import Lanes, background_slot
from skyfleet.secrets import SecretBox

log = logging.getLogger(__name__)
MODELS: dict[str, type[BaseModel]] = {"keypair": KeypairSync, "flavor": FlavorSync,
                                      "security_group": SecurityGroupSync}
#: The kinds this audit compares by listing.
LISTED = tuple(MODELS)
OWN = ""  # the owner key of a site credential's own user (keypairs listed without user_id)


@dataclass(frozen=True)
class Expect:
    """One binding Skyfleet holds in sync: resource ``resource_id`` is at ``remote_id`` in the site."""

    resource_id: str
    kind: str
    remote_id: str | None
    owner: str | None  # the site's user id (keypair) or project id (security group); None: unknown


@dataclass
class SiteScan:
    site_id: str
    name: str
    auth: dict[str, Any] = field(repr=False)
    expect: list[Expect] = field(default_factory=list)


@dataclass
class ScanReport:
    sites: int = 0
    failed: int = 0
    calls: int = 0  # listings asked for (pages past the first not counted)
    compared: int = 0
    drifted: int = 0  # (resource, site) pairs that get a repair task
    repaired: set[str] = field(default_factory=set)  # resource ids with a repair submitted
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"sites": self.sites, "failed": self.failed, "calls": self.calls, "compared": self.compared,
                "drifted": self.drifted, "resources": len(self.repaired), "seconds": self.seconds}


@dataclass
class SiteResult:
    calls: int = 0
    drifted: list[str] = field(default_factory=list)  # resource ids
    error: str | None = None


def desired(session: Session) -> dict[str, BaseModel]:
    """The declared resources this audit compares, each as its kind's payload model (one per resource,
    not per site). A copy job's one-shot resources are not kept in sync."""
    out: dict[str, BaseModel] = {}
    for resource in session.scalars(select(SyncResource).where(SyncResource.kind.in_(LISTED),
                                                              SyncResource.state == ACTIVE)):
        if resource.options.get("one_shot"):
            continue
        spec = {**resource.spec, **owner_refs(resource.kind, resource.owner,
                                              site_owner=resource.options.get("owner") == "site")}
        try:
            out[resource.id] = MODELS[resource.kind].model_validate(spec)
        except ValidationError:
            log.warning("drift audit: %s %s has a spec its kind refuses; left to the converge pass",
                        resource.kind, resource.id)
    return out


def _owner(kind: str, model: BaseModel, user_id: str | None, project_id: str | None) -> str | None:
    """Whose listing shows the copy: the site user (keypair) or project (security group) its last task
    recorded; None when unknown (a task recorded before Skyfleet kept it)."""
    if kind == "keypair":
        return user_id or (OWN if getattr(model, "site_scope", False) else None)
    if kind == "security_group":
        return project_id or None
    return OWN


def _sites(session: Session, box: SecretBox) -> list[SiteScan]:
    found = []
    for site_id, name, encrypted in session.execute(
            select(Site.id, Site.name, Site.auth_encrypted)
            .where(Site.managed.is_(True), Site.availability != "offline").order_by(Site.name)):
        auth = box.decrypt(encrypted)
        for key in ("password", "application_credential_secret"):
            SECRETS.add(auth.get(key))
        found.append(SiteScan(site_id, name, auth))
    return found


def _expectations(session: Session, chunk: list[SiteScan], models: dict[str, BaseModel]) -> None:
    """Fill each site's bindings to compare: ensured, no task open, and in sync by their last task's outcome
    (a binding is folded only when its whole operation settles: one offline site keeps the others' rows
    ``pending`` a while) or, its task pruned, by the binding's own status."""
    by_id = {s.site_id: s for s in chunk}
    # the few result fields it needs are read by the database (no JSON document decoded per binding), and
    # the rows come through Core: 100,000 bindings a minute is the scale
    rows = session.connection().execute(
        select(SyncBinding.resource_id, SyncBinding.site_id, SyncBinding.remote_id, SyncBinding.status,
               SyncResource.kind, Task.id, Task.state, Task.result["status"].as_string(),
               Task.result["remote_id"].as_string(), Task.result["user_id"].as_string(),
               Task.result["project_id"].as_string())
        .join(SyncResource, SyncResource.id == SyncBinding.resource_id)
        .outerjoin(Task, Task.id == SyncBinding.task_id)
        .where(SyncBinding.site_id.in_(list(by_id)), SyncBinding.action == "ensure", SyncResource.kind.in_(LISTED)))
    for resource_id, site_id, remote_id, status, kind, task_id, state, outcome, remote, user, project in rows:
        model = models.get(resource_id)
        if task_id is not None:
            in_sync = state == SUCCEEDED and outcome == "in-sync"
            remote_id = remote or remote_id
        else:
            in_sync = status == "in-sync"
        if model is None or not in_sync:
            continue
        by_id[site_id].expect.append(Expect(resource_id, kind, remote_id, _owner(kind, model, user, project)))


def compare(conn: Any, scan: SiteScan, models: dict[str, BaseModel]) -> SiteResult:
    """List each kind once (per owner) and return the resources that drifted on this site."""
    out = SiteResult()
    listings: dict[tuple[str, str], dict[str, Any]] = {}

    def listing(kind: str, owner: str) -> dict[str, Any]:
        key = (kind, owner)
        if key not in listings:
            out.calls += 1
            if kind == "keypair":
                listings[key] = syncapi.list_keypairs(conn, user_id=owner or None)
            elif kind == "flavor":
                listings[key] = syncapi.list_flavors(conn)
            else:
                listings[key] = syncapi.list_security_groups(conn, owner)
        return listings[key]

    for expect in sorted(scan.expect, key=lambda e: e.kind):
        model = models[expect.resource_id]
        if expect.owner is None:  # whose copy it is here is not known: the task finds out
            out.drifted.append(expect.resource_id)
            continue
        found = listing(expect.kind, expect.owner)
        if isinstance(model, KeypairSync):
            kp = found.get(model.name)
            drift = kp is None or not same_public_key(kp.get("public_key"), model.public_key)
        elif isinstance(model, FlavorSync):
            drift = flavor_drift(model, found.get(expect.remote_id or ""))
        else:
            assert isinstance(model, SecurityGroupSync)
            drift = group_drift(model, found.get(expect.remote_id or ""), found)
        if drift:
            out.drifted.append(expect.resource_id)
    return out


def _chunks(items: list[SiteScan], size: int) -> Iterator[list[SiteScan]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def repair(factory: sessionmaker[Session], drifted: dict[str, set[str]]) -> set[str]:
    """Submit one converge operation per drifted resource, on its drifted sites only (one transaction);
    returns the resource ids that got one."""
    started: set[str] = set()
    if not drifted:
        return started
    with transaction(factory) as session:
        now = utcnow()
        for resource_id in sorted(drifted):
            resource = session.get(SyncResource, resource_id, with_for_update=True)
            if resource is None or resource.state != ACTIVE:
                continue
            if converge(session, resource, now=now, only=drifted[resource_id]) is not None:
                started.add(resource_id)
    return started


def scan_fleet(factory: sessionmaker[Session], *, box: SecretBox, concurrency: int, timeout: float,
               pool: SitePool | None = None, lanes: Lanes | None = None, chunk: int = 200,
               wake: Callable[[], None] | None = None) -> ScanReport:
    """One drift audit over every online managed site; returns what it read and repaired. ``wake`` is
    called as soon as a chunk's repairs are committed (the workers need not wait for the whole audit)."""
    started = time.monotonic()
    pool = pool or SitePool()
    report = ScanReport()
    with transaction(factory) as session:
        models = desired(session)
        sites = _sites(session, box) if models else []

    def read(scan: SiteScan) -> SiteResult:
        with background_slot(lanes):
            try:
                conn = pool.connection(scan.auth, timeout=timeout)
                return compare(conn, scan, models)
            except SiteError as exc:
                return SiteResult(error=redact(exc.message)[:300])
            except Exception as exc:  # one site's surprise must not stop the audit
                log.exception("drift audit of site %s crashed", scan.name)
                return SiteResult(error=f"drift audit crashed: {type(exc).__name__}")

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(sites) or 1)),
                            thread_name_prefix="drift") as ex:
        for part in _chunks(sites, chunk):
            with transaction(factory) as session:
                _expectations(session, part, models)
            busy = [s for s in part if s.expect]
            futures: dict[Future[SiteResult], SiteScan] = {ex.submit(read, s): s for s in busy}
            drifted: dict[str, set[str]] = {}
            for future, scan in futures.items():
                result = future.result()
                report.sites += 1
                report.calls += result.calls
                report.compared += len(scan.expect)
                if result.error is not None:
                    report.failed += 1
                    log.debug("drift audit: site %s not compared: %s", scan.name, result.error)
                    continue
                for resource_id in result.drifted:
                    drifted.setdefault(resource_id, set()).add(scan.site_id)
            report.drifted += sum(len(s) for s in drifted.values())
            try:
                started_now = repair(factory, drifted)
                report.repaired |= started_now
                if started_now and wake is not None:
                    wake()
            except Exception:  # the next audit finds the same drift again
                log.exception("drift audit: repairs of %d resource(s) not submitted", len(drifted))
    report.seconds = round(time.monotonic() - started, 3)
    if report.drifted or report.failed:
        log.info("drift audit: %s", report.as_dict())
    return report
