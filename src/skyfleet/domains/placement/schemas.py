"""API shapes of placement and boots: the request, its placement policy, and the ranked plan."""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from skyfleet.domains.text import Name

Policy = Literal["pack", "spread", "nearest", "weighted"]


class Near(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ServerPlacement(BaseModel):
    """Explicit (``site``, optionally ``availability_zone``), or a policy over a selector or group."""

    model_config = ConfigDict(extra="forbid")

    site: Name | None = Field(None, max_length=255)
    availability_zone: Name | None = Field(None, max_length=255)
    policy: Policy | None = None
    selector: Name | None = Field(None, max_length=1000)
    group: Name | None = Field(None, max_length=64)
    min_sites: int = Field(1, ge=1, le=1000, description="spread: at least this many distinct sites")
    near: Near | None = Field(None, description="nearest: the location to be near")
    weight_label: Name | None = Field(None, max_length=63, description="weighted: a numeric site label, lower wins")
    allow_spill: bool = Field(False, description="an explicit site may spill over to the other candidates")

    @model_validator(mode="after")
    def _consistent(self) -> ServerPlacement:
        if self.site is not None and (self.policy or self.selector or self.group):
            raise ValueError("give either site (explicit) or a policy over a selector or group, not both")
        if self.availability_zone is not None and self.site is None:
            raise ValueError("availability_zone needs an explicit site")
        if self.policy == "nearest" and self.near is None:
            raise ValueError("policy nearest needs near {latitude, longitude}")
        if self.policy == "weighted" and not self.weight_label:
            raise ValueError("policy weighted needs weight_label")
        return self


class BootRequest(BaseModel):
    """``POST /v1/servers``: what to boot, and where."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(min_length=1, max_length=255)
    flavor: Name = Field(min_length=1, max_length=255, description="flavor name (the same name on each site)")
    image: Name = Field(min_length=1, max_length=255,
                        description="a declared Skyfleet image (id or name), else an image name on the site")
    networks: list[Annotated[Name, Field(max_length=255)]] = Field(
        default_factory=list, max_length=16, description="network names on the chosen site")
    keypair: Name | None = Field(None, max_length=255)
    security_groups: list[Annotated[Name, Field(max_length=255)]] = Field(default_factory=list, max_length=16)
    user_data: str | None = Field(None, max_length=65535, description="base64, as Nova takes it")
    metadata: dict[Annotated[Name, Field(max_length=255)], Annotated[Name, Field(max_length=255)]] = Field(
        default_factory=dict, max_length=64)
    count: int = Field(1, ge=1, le=100)
    placement: ServerPlacement = Field(default_factory=ServerPlacement)

    @field_validator("user_data")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        # Nova's own check (base64.decodebytes: wrapped lines are fine, bad padding is not); without it
        # every candidate site refuses the boot with a 400 one after the other.
        if value is not None:
            try:
                binascii.a2b_base64(value.encode("ascii"))
            except (binascii.Error, UnicodeEncodeError):
                raise ValueError("user_data must be base64-encoded (as Nova takes it)") from None
        return value


class Candidate(BaseModel):
    site_id: str
    site_name: str
    availability_zone: str | None
    score: float
    free: dict[str, int] = Field(description="free vcpus, ram_mb, disk_gb from the site's capacity")
    quota_headroom: dict[str, int | None] = Field(
        description="instances, cores, ram the caller may still use there (None: no limit known)")
    image: Literal["present", "copy"] = Field(description="present on the site, or copied there before the boot")
    reasons: list[str] = Field(default_factory=list, description="why it ranks where it does")
    slots: int | None = Field(None, description="how many of the servers fit there (capacity and the site's quota; "
                                                "None: capacity unknown)")
    flavor_id: str | None = Field(None, description="the flavor's id on the site")
    image_id: str | None = Field(None, description="the image's id on the site (None: copied before the boot)")


class Excluded(BaseModel):
    site_id: str
    site_name: str
    reasons: list[str]


class PlacementPlan(BaseModel):
    """The ranked candidates, the excluded sites with why, and the site of each server to boot (in
    order; a spill-over takes the next candidate)."""

    candidates: list[Candidate] = Field(description="the best candidates, best first (at most 100, and every "
                                                     "assigned site)")
    more_candidates: int = Field(0, description="candidates ranked below those listed")
    excluded: list[Excluded]
    assignments: list[str] = Field(description="site id per server, count entries (empty when ``problem``)")
    flavor: dict[str, Any] = Field(default_factory=dict, description="the flavor's vcpus, ram, disk")
    policy: Policy | Literal["explicit"] = Field("pack", description="the policy that ranked the candidates")
    problem: str | None = Field(None, description="why no assignment could be made (too few candidates for "
                                                  "spread's min_sites, too little room or global quota)")


class LocationFlavor(BaseModel):
    name: str
    vcpus: int
    ram: int = Field(description="MiB")
    disk: int = Field(description="GB")


class LocationImage(BaseModel):
    name: str
    id: str | None = Field(description="the image's id on the site (None: copied there on first use)")
    declared_id: str | None = Field(None, description="the declared Skyfleet image, when it is one")
    image: Literal["present", "copy"] = Field(description="present on the site, or copied there before a boot")


class Location(BaseModel):
    """A data centre the caller may boot in: where it is, its health and zones, its room, and what the
    caller can boot there (the first level of the site-then-zone choice)."""

    id: str
    name: str
    group: str | None
    labels: dict[str, str]
    latitude: float | None
    longitude: float | None
    availability: str
    availability_zones: list[str]
    free: dict[str, int] | None = Field(description="free vcpus, ram_mb, disk_gb (None: no hypervisor known)")
    quota_headroom: dict[str, int | None] = Field(
        description="instances, cores, ram the caller may still use there: the smaller of its global headroom and "
                    "the site's (None: no limit known)")
    quota_global: dict[str, int | None] = Field(description="the caller's global headroom (None: no global limit)")
    flavors: list[LocationFlavor]
    images: list[LocationImage]


class LocationList(BaseModel):
    locations: list[Location]
    next_marker: str | None = None
