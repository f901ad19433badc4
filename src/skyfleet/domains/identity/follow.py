"""What follows when the engine's outcomes for a declared project, user or group are folded into
its bindings: ownership shared by sites on one Keystone, and the project mapping.

Why it exists: two sites that share a Keystone (regions of one cloud) see one object. The first
site's task creates it (owned); the second finds it and would adopt it (not owned), so a later
removal would leave it behind. A binding is therefore owned when another binding of the same
resource on the same Keystone (same identity endpoint) created the same remote object.

A declared user's memberships follow the same rule: a group that one binding on a Keystone added
the user to is Skyfleet's on every binding of that Keystone (``site_fields`` tells each site's task
which memberships are Skyfleet's, so only those are ever removed).

A provisioned project's remote id on each site is recorded in the project mapping
(``domains/projects``), keyed by the project's id in the home Keystone (the binding of a site that
shares it), so quota, sync and the tenancy model find it. A row is only ever added where none
exists (an admin's explicit mapping wins) and removed, when the declaration goes, only where it
still holds the provisioned project's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.db.engine import is_read_only
from skyfleet.domains.projects import service as projects
from skyfleet.domains.projects.models import ProjectMapping
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource

IDENTITY_KINDS = frozenset({"project", "user", "group", "role_assignment", "domain"})


def keystone_of(site_auth: dict[str, Any]) -> str:
    """The identity endpoint a site authenticates at, normalised (sites that share it share objects)."""
    url = str(site_auth.get("auth_url") or "").strip().rstrip("/")
    return url[:-3].rstrip("/") if url.endswith("/v3") else url


def after_fold(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding], *,
               now: datetime) -> None:
    """Runs at the end of every fold of an identity resource; writes bindings and mapping rows only,
    never the resource row (folds run in workers' continuations and in requests at the same time, and
    a second row type written in another order than the request's would deadlock)."""
    if resource.kind not in IDENTITY_KINDS or not bindings:
        return
    rows = session.execute(select(Site.id, Site.auth_public).where(Site.id.in_(list(bindings)))).all()
    keystone = {sid: keystone_of(a or {}) for sid, a in rows}
    _share_ownership(bindings, keystone)
    if resource.kind == "user":
        _share_memberships(bindings, keystone)
    if resource.kind == "project" and not is_read_only(session):  # a view records nothing
        _follow_mapping(session, resource, bindings, keystone, now=now)


def _share_ownership(bindings: dict[str, SyncBinding], keystone: dict[str, str]) -> None:
    owned = {(keystone.get(b.site_id), b.remote_id) for b in bindings.values() if b.owned and b.remote_id}
    for binding in bindings.values():
        if not binding.owned and binding.remote_id and (keystone.get(binding.site_id), binding.remote_id) in owned:
            binding.owned = True


def _share_memberships(bindings: dict[str, SyncBinding], keystone: dict[str, str]) -> None:
    """A membership one binding added is ``added`` on every binding of the same Keystone and user
    (the other region's task found it in place and would otherwise call it adopted)."""
    added = {(keystone.get(b.site_id), b.remote_id, g) for b in bindings.values() if b.remote_id
             for g, how in (b.memberships or {}).items() if how == "added"}
    for binding in bindings.values():
        held = binding.memberships or {}
        fixed = {g: "added" if how == "adopted" and (keystone.get(binding.site_id), binding.remote_id, g) in added
                 else how for g, how in held.items()}
        if fixed != held:
            binding.memberships = fixed


def site_fields(resource: SyncResource, bindings: dict[str, SyncBinding]) -> dict[str, dict[str, Any]]:
    """The per-site part of a declared user's task payload: the groups Skyfleet added it to there
    (``added_groups``); only those are taken away when a group is dropped or the user purged.

    A binding with no record yet that owns the user (it was provisioned before Skyfleet kept the
    record) counts every group the declaration lists or listed as added: Skyfleet created the user,
    so it had no membership Skyfleet did not give it. An adopted user without a record has none."""
    if resource.kind != "user":
        return {}
    listed = sorted(set(resource.spec.get("groups") or []) | set(resource.options.get("leave_groups") or []))
    out: dict[str, dict[str, Any]] = {}
    for sid, b in bindings.items():
        added = listed if b.memberships is None and b.owned and b.remote_id else \
            sorted(g for g, how in (b.memberships or {}).items() if how == "added")
        if added:
            out[sid] = {"added_groups": added}
    return out


def _follow_mapping(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding],
                    keystone: dict[str, str], *, now: datetime) -> None:
    """Record (or, once the declaration is being deleted, drop) the provisioned project's id on each
    site that does not share the home Keystone, keyed by its id in the home Keystone."""
    home = keystone_of({"auth_url": resource.options.get("home_auth_url")})
    at_home = sorted(str(b.remote_id) for b in bindings.values()
                     if home and b.remote_id and keystone.get(b.site_id) == home)
    if not at_home:
        return
    global_id = at_home[0]
    for binding in bindings.values():
        if not binding.remote_id or keystone.get(binding.site_id) == home:
            continue  # nothing provisioned yet, or the same id by rule
        row = session.get(ProjectMapping, (global_id, binding.site_id))
        if resource.state == DELETING:
            if row is not None and row.remote_project_id == binding.remote_id:
                session.delete(row)
        elif row is None and binding.status == "in-sync":
            projects.set_mapping(session, project_id=global_id, site_id=binding.site_id,
                                 remote_project_id=str(binding.remote_id), now=now)
