"""Store what a refresh observed on a site, and answer the global view's queries.

Keyword-only functions over an explicit session; they never commit. Writes are set-based (bulk
insert, bulk update by primary key, delete by id) and only touch rows whose content changed, so an
unchanged site costs one SELECT of its digests. Status changes and deletions become events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from skyfleet.domains.events import service as events
from skyfleet.domains.inventory.models import InventoryItem, InventorySync
from skyfleet.drivers.base import Record

CHUNK = 500
SINGULAR = {"servers": "server", "volumes": "volume", "images": "image", "networks": "network",
            "subnets": "subnet", "ports": "port", "routers": "router", "floating_ips": "floating IP",
            "security_groups": "security group", "keypairs": "keypair", "flavors": "flavor",
            "hypervisors": "hypervisor", "availability_zones": "availability zone"}
EVENT_KINDS = frozenset({"servers", "volumes", "images", "networks", "routers", "floating_ips", "ports"})


@dataclass
class ApplyCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    events: int = 0
    addresses: int = 0  # derived address and subnet rows written (domains.addresses.build)

    @property
    def changed(self) -> bool:
        """Whether any row was created, updated or deleted."""
        return self.created + self.updated + self.deleted > 0

    def add(self, other: ApplyCounts) -> None:
        for name in ("created", "updated", "deleted", "unchanged", "events", "addresses"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class SiteRef:
    id: str
    name: str


def digest(record: Record) -> str:
    blob = json.dumps([record.project_id, record.name, record.status, record.data], sort_keys=True, default=str)
    return hashlib.md5(blob.encode(), usedforsecurity=False).hexdigest()


def _row(site_id: str, record: Record, now: datetime) -> dict[str, Any]:
    return {"site_id": site_id, "kind": record.kind, "remote_id": record.remote_id[:255],
            "project_id": record.project_id, "name": (record.name or "")[:255] or None,
            "status": (record.status or "")[:32] or None,
            "ips": f" {' '.join(record.ips)} " if record.ips else "", "digest": digest(record),
            "data": record.data, "first_seen_at": now, "changed_at": now}


def get_sync(session: Session, site_id: str) -> InventorySync:
    sync = session.get(InventorySync, site_id)
    if sync is None:
        sync = InventorySync(site_id=site_id, cursors={}, last_calls=0)
        session.add(sync)
    return sync


def _existing(session: Session, site_id: str, kind: str,
              remote_ids: Iterable[str] | None = None) -> dict[str, tuple[int, str, str | None, str | None]]:
    """remote id -> (row id, digest, status, project) of the stored rows (all of the kind, or those ids)."""
    query = select(InventoryItem.remote_id, InventoryItem.id, InventoryItem.digest, InventoryItem.status,
                   InventoryItem.project_id).where(InventoryItem.site_id == site_id, InventoryItem.kind == kind)
    if remote_ids is None:
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in session.execute(query)}
    found: dict[str, tuple[int, str, str | None, str | None]] = {}
    ids = list(remote_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = query.where(InventoryItem.remote_id.in_(ids[start:start + CHUNK]))
        found.update({r[0]: (r[1], r[2], r[3], r[4]) for r in session.execute(chunk)})
    return found


def stored_ids(session: Session, *, site_id: str, kind: str) -> set[str]:
    """Remote ids of ``kind`` stored for the site."""
    return set(session.scalars(select(InventoryItem.remote_id).where(
        InventoryItem.site_id == site_id, InventoryItem.kind == kind)))


def _event(session: Session, site: SiteRef, kind: str, what: str, project: str | None, remote_id: str,
           name: str | None, details: dict[str, Any]) -> None:
    label = f"{SINGULAR.get(kind, kind)} {name or remote_id}"
    severity = "warning" if details.get("to") == "ERROR" or (what == "deleted" and kind == "servers") else "info"
    message = {"created": f"{label} appeared on site {site.name}",
               "deleted": f"{label} disappeared from site {site.name}",
               "status": f"{label} on site {site.name}: {details.get('from')} -> {details.get('to')}"}[what]
    events.record(session, kind=f"inventory.{what}", severity=severity, site_id=site.id, site_name=site.name,
                  project_id=project, message=message,
                  details={"kind": kind, "remote_id": remote_id, **details})


def apply_records(
    session: Session, *, site: SiteRef, kind: str, records: list[Record], now: datetime,
    complete: bool, gone: Iterable[str] = (), emit: bool = True,
) -> ApplyCounts:
    """Store ``records`` of ``kind`` seen on ``site``.

    ``complete``: the records are every resource of the kind, so stored rows not among them were
    deleted. Otherwise only the listed records changed, and ``gone`` names deleted remote ids (a
    record with status DELETED counts as gone too). ``emit``: record events for what changed.
    """
    counts = ApplyCounts()
    deleted_ids = set(gone) | {r.remote_id for r in records if r.status == "DELETED"}
    alive = {r.remote_id: r for r in records if r.remote_id not in deleted_ids}
    existing = _existing(session, site.id, kind, None if complete else set(alive) | deleted_ids)
    if complete:
        deleted_ids |= set(existing) - set(alive)
    inserts, updates = [], []
    for remote_id, record in alive.items():
        row = _row(site.id, record, now)
        found = existing.get(remote_id)
        if found is None:
            inserts.append(row)
            if emit and kind in EVENT_KINDS:
                _event(session, site, kind, "created", record.project_id, remote_id, record.name,
                       {"status": record.status})
                counts.events += 1
        elif found[1] != row["digest"]:
            row.pop("first_seen_at")
            updates.append({"id": found[0], **row})
            if emit and found[2] != record.status and kind in EVENT_KINDS:
                _event(session, site, kind, "status", record.project_id, remote_id, record.name,
                       {"from": found[2], "to": record.status})
                counts.events += 1
        else:
            counts.unchanged += 1
    doomed = [(remote_id, existing[remote_id]) for remote_id in deleted_ids if remote_id in existing]
    for remote_id, (_, _, status, project) in doomed:
        if emit and kind in EVENT_KINDS:
            _event(session, site, kind, "deleted", project, remote_id, None, {"last_status": status})
            counts.events += 1
    for start in range(0, len(inserts), CHUNK):
        session.execute(insert(InventoryItem), inserts[start:start + CHUNK])
    if updates:
        session.execute(update(InventoryItem), updates)
    row_ids = [found[0] for _, found in doomed]
    for start in range(0, len(row_ids), CHUNK):
        session.execute(delete(InventoryItem).where(InventoryItem.id.in_(row_ids[start:start + CHUNK])))
    counts.created, counts.updated, counts.deleted = len(inserts), len(updates), len(doomed)
    return counts


@dataclass
class SyncUpdate:
    """What one refresh of a site achieved, for its ``inventory_sync`` row."""

    full: bool
    calls: int
    cursors: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def record_refresh(session: Session, *, site_id: str, outcome: SyncUpdate, now: datetime) -> None:
    sync = get_sync(session, site_id)
    sync.attempted_at = now
    sync.last_calls = outcome.calls
    sync.last_error = outcome.error
    if outcome.error is not None:
        return
    sync.cursors = {**(sync.cursors or {}), **outcome.cursors}
    sync.refreshed_at = now
    if outcome.full:
        sync.full_at = now
