"""The site registry: create, find, change and delete sites, and record what audits observe.

Keyword-only functions over an explicit session; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyfleet.db.base import utcnow
from skyfleet.domains.events import service as events
from skyfleet.domains.pagination import find_marker, text_marker
from skyfleet.domains.selectors import Requirement
from skyfleet.domains.sites.models import Site, SiteLabel
from skyfleet.domains.sites.schemas import (
    Capabilities,
    Location,
    SiteAuth,
    SiteCreate,
    SiteOut,
    SiteUpdate,
)
from skyfleet.errors import Conflict, NotFound
from skyfleet.logs import SECRETS, redact
from skyfleet.secrets import SecretBox


def _set_labels(site: Site, labels: dict[str, str]) -> None:
    site.label_rows = [SiteLabel(key=k, value=v) for k, v in sorted(labels.items())]


def _set_auth(site: Site, box: SecretBox, auth: SiteAuth) -> None:
    document = auth.document()
    for key in ("password", "application_credential_secret"):
        SECRETS.add(document.get(key))
    site.auth_public = auth.public()
    site.auth_encrypted = box.encrypt(document)


def create_site(session: Session, *, box: SecretBox, data: SiteCreate) -> Site:
    if session.scalar(select(Site.id).where(Site.name == data.name)) is not None:
        raise Conflict(f"a site named {data.name!r} already exists")
    site = Site(
        name=data.name, description=data.description, group=data.group, managed=data.managed,
        latitude=data.location.latitude if data.location else None,
        longitude=data.location.longitude if data.location else None,
        availability="unknown", consecutive_failures=0, capabilities={},
    )
    _set_auth(site, box, data.auth)
    _set_labels(site, data.labels)
    session.add(site)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a site named {data.name!r} already exists") from exc
    events.record(session, kind="site.created", site_id=site.id, site_name=site.name,
                  message=f"site {site.name} registered")
    return site


def get_site(session: Session, ref: str, *, for_update: bool = False) -> Site:
    """A site by id or by unique name."""
    query = select(Site).where(or_(Site.id == ref, Site.name == ref))
    if for_update:
        query = query.with_for_update()
    site = session.scalars(query).first()
    if site is None:
        raise NotFound(f"no site with id or name {ref!r}")
    return site


@dataclass(frozen=True)
class SiteFilter:
    selector: list[Requirement] = field(default_factory=list)
    group: str | None = None
    availability: tuple[str, ...] = ()
    name_contains: str | None = None
    managed: bool | None = None


def _label_clause(req: Requirement) -> Any:
    label = and_(SiteLabel.site_id == Site.id, SiteLabel.key == req.key)
    if req.op == "=":
        return exists().where(label, SiteLabel.value == req.value)
    if req.op == "!=":
        return ~exists().where(label, SiteLabel.value == req.value)
    if req.op == "exists":
        return exists().where(label)
    return ~exists().where(label)


def site_query(filters: SiteFilter) -> Any:
    query = select(Site)
    for req in filters.selector:
        query = query.where(_label_clause(req))
    if filters.group is not None:
        query = query.where(Site.group == filters.group)
    if filters.availability:
        query = query.where(Site.availability.in_(filters.availability))
    if filters.name_contains:
        escaped = filters.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Site.name.ilike(f"%{escaped}%", escape="\\"))
    if filters.managed is not None:
        query = query.where(Site.managed == filters.managed)
    return query


def list_sites(
    session: Session, *, filters: SiteFilter, limit: int, marker: str | None
) -> tuple[list[Site], str | None]:
    """Sites sorted by name; ``marker`` is the name (or id) of the last site of the previous page."""
    query = site_query(filters)
    ref = text_marker(marker)
    if ref:
        marker_name = find_marker(session, select(Site.name).where(or_(Site.id == ref, Site.name == ref)), ref,
                                  "site")
        query = query.where(Site.name > marker_name)
    rows = list(session.scalars(query.order_by(Site.name).limit(limit + 1)))
    next_marker = rows[limit - 1].name if len(rows) > limit else None
    return rows[:limit], next_marker


def update_site(session: Session, *, box: SecretBox, site: Site, data: SiteUpdate) -> Site:
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and data.name and data.name != site.name:
        if session.scalar(select(Site.id).where(Site.name == data.name)) is not None:
            raise Conflict(f"a site named {data.name!r} already exists")
        site.name = data.name
    if data.auth is not None:
        _set_auth(site, box, data.auth)
    if data.labels is not None:
        _set_labels(site, data.labels)
    if "group" in changes:
        site.group = data.group
    if data.description is not None:
        site.description = data.description
    if "location" in changes:
        site.latitude = data.location.latitude if data.location else None
        site.longitude = data.location.longitude if data.location else None
    if data.managed is not None and data.managed != site.managed:
        set_managed(session, site=site, managed=data.managed)
    site.updated_at = utcnow()
    session.flush()
    events.record(session, kind="site.updated", site_id=site.id, site_name=site.name,
                  message=f"site {site.name} updated", details={"fields": sorted(changes)})
    return site


def set_managed(session: Session, *, site: Site, managed: bool) -> Site:
    if site.managed != managed:
        site.managed = managed
        site.updated_at = utcnow()
        kind = "site.managed" if managed else "site.unmanaged"
        events.record(session, kind=kind, site_id=site.id, site_name=site.name,
                      message=f"site {site.name} {'managed' if managed else 'unmanaged'}")
    return site


def delete_site(session: Session, *, site: Site) -> None:
    events.record(session, kind="site.deleted", site_id=site.id, site_name=site.name,
                  message=f"site {site.name} deleted")
    session.delete(site)


def decrypt_auth(box: SecretBox, site: Site) -> dict[str, Any]:
    document = box.decrypt(site.auth_encrypted)
    for key in ("password", "application_credential_secret"):
        SECRETS.add(document.get(key))
    return document


def to_out(site: Site) -> SiteOut:
    location = None
    if site.latitude is not None and site.longitude is not None:
        location = Location(latitude=site.latitude, longitude=site.longitude)
    return SiteOut(
        id=site.id, name=site.name, description=site.description, labels=site.labels,
        group=site.group, location=location, managed=site.managed, auth=dict(site.auth_public),
        availability=site.availability,
        consecutive_failures=site.consecutive_failures, last_error=site.last_error,
        last_seen_at=site.last_seen_at, last_audit_at=site.last_audit_at, latency_ms=site.latency_ms,
        capabilities=Capabilities.model_validate(site.capabilities or {}),
        created_at=site.created_at, updated_at=site.updated_at,
    )


@dataclass(frozen=True)
class HealthObservation:
    """What one audit of one site saw."""

    reachable: bool
    failed_services: tuple[str, ...] = ()
    capabilities: dict[str, Any] | None = None
    latency_ms: float | None = None
    error: str | None = None


def short_reason(text: str | None, *, limit: int = 300) -> str | None:
    """``text`` fit for ``last_error``: secrets masked, control characters dropped, at most ``limit`` chars."""
    if not text:
        return None
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in redact(text)).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def record_health(
    session: Session, *, site: Site, seen: HealthObservation, offline_after: int, now: datetime
) -> str | None:
    """Apply one audit result; returns the new availability when it changed (and records an event)."""
    before = site.availability
    site.last_audit_at = now
    site.latency_ms = seen.latency_ms
    if seen.reachable:
        site.consecutive_failures = 0
        site.last_seen_at = now
        if seen.capabilities is not None:
            site.capabilities = seen.capabilities
        after = "degraded" if seen.failed_services else "online"
        site.last_error = short_reason(seen.error)
    else:
        site.consecutive_failures += 1
        site.last_error = short_reason(seen.error or "unreachable")
        after = "offline" if site.consecutive_failures >= offline_after else before
    if after == before:
        return None
    site.availability = after
    severity = {"online": "info", "degraded": "warning", "offline": "error"}.get(after, "info")
    message = f"site {site.name} is {after} (was {before})"
    if after != "online" and site.last_error:
        message += f": {site.last_error}"
    events.record(
        session, kind="site.availability", severity=severity, site_id=site.id, site_name=site.name,
        message=message, at=now,
        details={"from": before, "to": after, "failed_services": list(seen.failed_services),
                 "consecutive_failures": site.consecutive_failures},
    )
    return after


def reencrypt_all(session: Session, *, box: SecretBox) -> int:
    """Re-encrypt every stored site secret with the primary key (key rotation); returns the count."""
    count = 0
    for site in session.scalars(select(Site).with_for_update()):
        site.auth_encrypted = box.rotate(site.auth_encrypted)
        count += 1
    return count
