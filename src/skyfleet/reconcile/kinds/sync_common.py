"""What the three sync kinds (keypair, flavor, security group) share: the per-site payload fields
(action, ownership, force, purge) and the mapping of a global project or user onto a site.

Mapping rule (DESIGN §3): the same id when the site shares the home Keystone, else the project or
user with the same name in the same-named domain. A name that does not exist in the site is a
permanent failure of that site's binding, with the reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.text import Name
from skyfleet.drivers.openstack import syncapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import SiteContext


class IdentityRef(BaseModel):
    """A project or user of the home Keystone, as the caller's token named it."""

    model_config = ConfigDict(extra="forbid")

    id: Name | None = Field(None, max_length=255)
    name: Name | None = Field(None, max_length=255)
    domain_name: Name = Field("Default", max_length=255)


class SyncPayload(BaseModel):
    """Fields every sync task carries besides the resource's own spec."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["ensure", "delete"] = "ensure"
    resource_id: str | None = None
    owned: bool = False  # Skyfleet created the copy in this site (per-site value)
    force: bool = False  # take over a different pre-existing resource of the same name
    purge: bool = False  # delete even what Skyfleet did not create
    generation: int = 0  # the desired resource's version this task applies
    # Act as the site credential's own user / in its own project. Only a fleet admin's resource may
    # (owner "site", or declared without a project); a tenant's resource always names its project
    # and user, and a task without them fails rather than fall back on the site's admin identity.
    site_scope: bool = False


def resolve(ctx: SiteContext, collection: str, ref: IdentityRef | None) -> str | None:
    """The site's id for ``ref`` (None: the site credential's own user/project)."""
    if ref is None or (ref.id is None and ref.name is None):
        return None
    found = syncapi.find_identity(ctx.connection(), collection, ident=ref.id, name=ref.name,
                                  domain_name=ref.domain_name)
    if found is None:
        what = collection[:-1]
        raise PermanentSiteError(
            f"no {what} {ref.name or ref.id!r} (domain {ref.domain_name!r}) in site {ctx.site_name}: "
            f"neither the same id nor the same name in the same-named domain")
    return found


def resolve_owner(ctx: SiteContext, collection: str, ref: IdentityRef | None, *, site_scope: bool) -> str | None:
    """The site's id of the owning project or user; None means the site credential's own, which only a
    ``site_scope`` task may use (a tenant's task never falls back on the site's admin identity)."""
    found = resolve(ctx, collection, ref)
    if found is None and not site_scope:
        raise PermanentSiteError(
            f"refused: no {collection[:-1]} to act as in site {ctx.site_name}; a tenant's resource is written only "
            f"in its own mapped {collection[:-1]}, never as the site's own")
    return found


def site_project(ctx: SiteContext, ref: IdentityRef | None, *, site_scope: bool) -> str:
    """The owning project's id in the site (the credential's own project only for ``site_scope``)."""
    found = resolve_owner(ctx, "projects", ref, site_scope=site_scope)
    return str(found if found is not None else syncapi.current_ids(ctx.connection())[1])


def same_public_key(a: str | None, b: str) -> bool:
    """Two OpenSSH public keys are the same key when their type and base64 body match (the comment
    does not count)."""
    return a is not None and a.split()[:2] == b.split()[:2]


def verdict(status: str, *, remote_id: str | None, created: bool = False, detail: str = "",
            **extra: Any) -> dict[str, Any]:
    """The task result the sync service folds into the binding."""
    return {"status": status, "remote_id": remote_id, "created": created, "detail": detail, **extra}


def create_intent(plan: dict[str, Any]) -> dict[str, Any] | None:
    """What a sync kind records before applying ``plan``: that it creates (or replaces) the copy."""
    return {"create": True} if plan.get("create") or plan.get("replace") else None


def created_earlier(seen: dict[str, Any]) -> dict[str, Any]:
    """Verdict fields for a copy found in place that an earlier, cut-short attempt set out to create:
    it is Skyfleet's (owned), not a pre-existing object to adopt."""
    if not seen.get("created_before"):
        return {}
    return {"created": True, "detail": "created by an earlier attempt that was cut short"}


def refuse(kind: str, name: str, why: str) -> PermanentSiteError:
    return PermanentSiteError(
        f"{kind} {name!r} already exists in this site and differs ({why}); Skyfleet did not create it and "
        f"does not overwrite it (set force to take it over)")
