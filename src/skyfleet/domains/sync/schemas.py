"""API shapes of desired resources: placement, the three specs, and the per-site bindings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skyfleet.domains.text import Name


class Placement(BaseModel):
    """Where a resource goes: explicit sites, a label selector, a group, or (default) all managed sites."""

    model_config = ConfigDict(extra="forbid")

    sites: list[Annotated[Name, Field(max_length=255)]] | None = Field(None, max_length=10_000)
    selector: Name | None = Field(None, max_length=1000)
    group: Name | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> Placement:
        if sum(v is not None for v in (self.sites, self.selector, self.group)) > 1:
            raise ValueError("give at most one of sites, selector, group (none: all managed sites)")
        return self


class ResourceCreate(BaseModel):
    """A desired resource: its spec (kind-specific, validated by the kind), placement and options."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any]
    placement: Placement = Field(default_factory=Placement)
    force: bool = False
    replace: bool = False
    owner: str = Field("caller", pattern="^(caller|site)$",
                       description="keypairs: copy owned by the caller's mapped user, or the site's user")


class ResourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] | None = None
    placement: Placement | None = None
    force: bool | None = None
    replace: bool | None = None


class BindingOut(BaseModel):
    site_id: str
    site_name: str
    status: str
    action: str
    remote_id: str | None
    owned: bool
    error: str | None
    task_id: str | None
    updated_at: datetime
    progress: dict[str, Any] | None = Field(
        None, description="a copy under way (images): bytes done, total bytes when known, when reported")
    memberships: dict[str, str] | None = Field(
        None, description="a declared user's groups in this site: 'added' (by Skyfleet, removed when the group "
        "is dropped or the declaration purged), 'adopted' (there before; never removed), 'kept' (dropped from "
        "groups but adopted, so left in the site)")


class ResourceOut(BaseModel):
    id: str
    kind: str
    name: str
    project_id: str | None
    spec: dict[str, Any]
    placement: dict[str, Any]
    options: dict[str, Any]
    state: str
    generation: int
    operation_id: str | None
    counts: dict[str, int]
    bindings: list[BindingOut]
    created_at: datetime
    updated_at: datetime


class ResourceList(BaseModel):
    resources: list[ResourceOut]
    next_marker: str | None = None
