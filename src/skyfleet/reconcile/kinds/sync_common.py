"""What the three sync kinds (keypair, flavor, security group) share: the per-site payload fields
(action, ownership, force, purge) and the mapping of a global project or user onto a site.

Mapping rule (DESIGN §3): the same id when the site shares the home Keystone, else the project or
user with the same name in the same-named domain. A name that does not exist in the site is a
permanent failure of that site's binding, with the reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from skyfleet.drivers.openstack import syncapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import SiteContext


class IdentityRef(BaseModel):
    """A project or user of the home Keystone, as the caller's token named it."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    name: str | None = None
    domain_name: str = "Default"


class SyncPayload(BaseModel):
    """Fields every sync task carries besides the resource's own spec."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["ensure", "delete"] = "ensure"
    resource_id: str | None = None
    owned: bool = False  # Skyfleet created the copy in this site (per-site value)
    force: bool = False  # take over a different pre-existing resource of the same name
    purge: bool = False  # delete even what Skyfleet did not create
    generation: int = 0  # the desired resource's version this task applies


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


def verdict(status: str, *, remote_id: str | None, created: bool = False, detail: str = "",
            **extra: Any) -> dict[str, Any]:
    """The task result the sync service folds into the binding."""
    return {"status": status, "remote_id": remote_id, "created": created, "detail": detail, **extra}


def refuse(kind: str, name: str, why: str) -> PermanentSiteError:
    return PermanentSiteError(
        f"{kind} {name!r} already exists in this site and differs ({why}); Skyfleet did not create it and "
        f"does not overwrite it (set force to take it over)")
