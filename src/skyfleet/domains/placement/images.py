"""How an image reaches a site for a boot: already there, copied first, or not at all.

Why it exists: a boot names an image once for every site. On each site the image is either
``present`` (a declared image whose copy there is in-sync, or an image of that name in the site's
inventory that the caller may use) or ``copy`` (a declared image placed on the site whose mode will
copy it: ``lazy`` is copied on first use, before the boot; ``auto`` and a ``controlled`` rollout
that has reached the site are being copied anyway). Anything else excludes the site, with the
reason. The rule is shared by ``plan`` and ``GET /v1/locations``, so what a location shows is what a
boot can use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from skyfleet.domains.images import rollout
from skyfleet.domains.placement.facts import SiteFacts
from skyfleet.domains.selectors import matches, parse_selector
from skyfleet.domains.sync.models import ACTIVE, SyncBinding, SyncResource
from skyfleet.errors import Conflict, Invalid

IN_SYNC = "in-sync"
COPYING_MODES = ("auto", "lazy", "controlled")


@dataclass
class Declared:
    """A declared image the caller may use, with its binding status per site."""

    resource: SyncResource
    bindings: dict[str, tuple[str, str | None]]  # site id -> (status, remote id)

    @property
    def mode(self) -> str:
        return str(self.resource.options.get("mode", "auto"))


def _public(resource: SyncResource) -> bool:
    return resource.spec.get("visibility") in ("public", "community")


def find_declared(session: Session, *, ref: str, project_id: str | None, is_admin: bool) -> Declared | None:
    """The declared image ``ref`` (id or name) the caller may use: its project's, a public one, or any
    (fleet admins; their own project's first). None when there is none; :class:`Conflict` when a name
    is ambiguous."""
    query = select(SyncResource).where(SyncResource.kind == "image", SyncResource.state == ACTIVE,
                                       or_(SyncResource.id == ref, SyncResource.name == ref))
    rows = [r for r in session.scalars(query)
            if is_admin or r.scope == (project_id or "-") or _public(r)]
    if len(rows) > 1:
        own = [r for r in rows if r.scope == (project_id or "-")]
        rows = own if len(own) == 1 else rows
    if len(rows) > 1:
        raise Conflict(f"{len(rows)} declared images are named {ref!r}; give the image's id")
    if not rows:
        return None
    return Declared(rows[0], bindings_of(session, [rows[0].id]).get(rows[0].id, {}))


def visible_declared(session: Session, *, project_id: str | None, is_admin: bool) -> list[Declared]:
    """Every declared image the caller may use (two queries), by name."""
    query = select(SyncResource).where(SyncResource.kind == "image", SyncResource.state == ACTIVE)
    rows = [r for r in session.scalars(query.order_by(SyncResource.name))
            if is_admin or r.scope == (project_id or "-") or _public(r)]
    bindings = bindings_of(session, [r.id for r in rows])
    return [Declared(r, bindings.get(r.id, {})) for r in rows]


def bindings_of(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, tuple[str, str | None]]]:
    out: dict[str, dict[str, tuple[str, str | None]]] = {}
    if resource_ids:
        for rid, site_id, status, remote in session.connection().execute(
                select(SyncBinding.resource_id, SyncBinding.site_id, SyncBinding.status, SyncBinding.remote_id)
                .where(SyncBinding.resource_id.in_(list(resource_ids)))):
            out.setdefault(rid, {})[site_id] = (status, remote)
    return out


def placed(declared: Declared, site: SiteFacts) -> bool:
    """Whether the image's placement takes ``site`` (evaluated in memory: no query per site)."""
    placement = declared.resource.placement or {}
    if not site.managed:
        return False
    if placement.get("sites") is not None:
        return bool(site.name in placement["sites"] or site.id in placement["sites"])
    if placement.get("group") is not None:
        return bool(site.group == placement["group"])
    if placement.get("selector"):
        try:
            return matches(parse_selector(placement["selector"]), site.labels)
        except Invalid:
            return False
    return True


@dataclass(frozen=True)
class Route:
    """How the image gets to one site: ``present`` or ``copy``, the remote id when known, and why."""

    how: Literal["present", "copy"]
    remote_id: str | None
    reason: str


def declared_route(declared: Declared, site: SiteFacts) -> Route | None:
    """``present`` where the copy is in-sync; ``copy`` where the mode copies it to this placed site;
    None otherwise (the caller then looks for an image of the name in the site's inventory)."""
    status, remote = declared.bindings.get(site.id, ("", None))
    name = declared.resource.name
    if status == IN_SYNC and remote:
        return Route("present", remote, f"declared image {name!r} is in-sync on the site")
    if not placed(declared, site) or declared.mode not in COPYING_MODES:
        return None
    if declared.mode == "controlled" and rollout.holds(declared.resource, site.id):
        return None
    source = declared.resource.spec.get("source") or {}
    if source.get("upload") and not source.get("image_id"):
        return None  # the bytes are still to be uploaded
    if declared.mode == "lazy":
        return Route("copy", None, f"declared image {name!r} (lazy) is copied to the site before the boot")
    return Route("copy", None, f"declared image {name!r} ({declared.mode}) is being copied to the site")

