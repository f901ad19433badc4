"""API shapes of global quotas; the resource names are the ones Nova, Neutron and Cinder use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyfleet.domains.text import Name

COMPUTE = ("instances", "cores", "ram", "key_pairs", "server_groups", "metadata_items")
NETWORK = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
VOLUME = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes")
RESOURCES = COMPUTE + NETWORK + VOLUME
# Nova's old nova-network limits, which Kingbird's API still carries: kept as global limits and shown,
# never written to sites (Neutron's ``floatingip`` and ``security_group`` are what sites enforce).
RECORDED = ("floating_ips", "fixed_ips", "security_groups")
KNOWN = RESOURCES + RECORDED
SERVICE_OF = {**dict.fromkeys(COMPUTE, "compute"), **dict.fromkeys(NETWORK, "network"),
              **dict.fromkeys(VOLUME, "volume")}
# The defaults of a stock OpenStack (nova.conf, neutron.conf, cinder.conf).
BUILTIN_DEFAULTS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "server_groups": 10, "metadata_items": 128,
    "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50, "security_group": 10,
    "security_group_rule": 100, "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
    "backup_gigabytes": 1000, "floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
}
# Nova stores limits in a signed 32-bit column; -1 is unlimited. Every limit Skyfleet takes is in this range.
MIN_LIMIT, MAX_LIMIT = -1, 2**31 - 1
Limit = Annotated[int, Field(ge=MIN_LIMIT, le=MAX_LIMIT, strict=True)]
Limits = dict[str, int]
LimitsIn = dict[Name, Limit]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def check_limits(value: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(value) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown resource(s) {unknown}; known: {list(KNOWN)}")
    bad = sorted(k for k, v in value.items() if not MIN_LIMIT <= v <= MAX_LIMIT)
    if bad:
        raise ValueError(f"limits must be integers from -1 (unlimited) to {MAX_LIMIT}: {bad}")
    return value


class QuotaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"limits": {"cores": 40, "ram": 102400}, "quota_class": "default", "mode": "hard", "policy": "weighted",
         "weights": {"paris-1": 2.0, "lyon-1": 1.0}}]})

    limits: LimitsIn = Field(default_factory=dict, description="Per-project overrides; -1 is unlimited.")
    quota_class: Name | None = Field(None, max_length=64, description="Class whose limits apply first.")
    mode: Literal["hard", "soft", "kingbird"] | None = Field(
        None, description="hard (default): site limits never add up above the global limit; soft: every site "
        "may use all of the headroom; kingbird: Kingbird's rule, global - total usage + site usage (may overshoot).")
    policy: Literal["proportional", "even", "weighted"] | None = None
    weights: dict[Name, Weight] | None = Field(None, max_length=10_000,
                                              description="Site name -> weight (policy weighted), finite, >= 0.")
    project_name: Name | None = Field(None, max_length=64,
                                      description="Name in the home Keystone (share-nothing sites match by it).")
    domain_name: Name | None = Field(None, max_length=64)

    _limits = field_validator("limits")(classmethod(lambda cls, v: check_limits(v)))

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and any(w < 0 for w in value.values()):
            raise ValueError("weights must be >= 0")
        return value


class UnmappedSite(BaseModel):
    site_id: str
    site_name: str
    reason: str = Field(description="Why the project has no id there (the last look-up's answer, or not looked up).")
    absent: bool = Field(False, description="The site's Keystone knows neither the project's id nor its name.")


class QuotaOut(BaseModel):
    project_id: str
    project_name: str | None
    domain_name: str
    quota_class: str | None
    mode: str
    policy: str
    weights: dict[str, float]
    overrides: Limits
    limits: Limits = Field(description="Effective global limits: defaults, then class, then overrides.")
    unmapped_sites: list[UnmappedSite] = Field(default_factory=list,
                                               description="Managed sites where the project has no known id.")
    warnings: list[str] = Field(default_factory=list, description="Where the global quota does not apply, and why.")


class ClassUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limits": {"cores": 100, "ram": -1}}]})

    limits: LimitsIn

    _limits = field_validator("limits")(classmethod(lambda cls, v: check_limits(v)))


class ClassOut(BaseModel):
    name: str
    limits: Limits


class ClassList(BaseModel):
    classes: list[ClassOut]


class SiteUsage(BaseModel):
    site_id: str
    site_name: str
    availability: str
    remote_project_id: str | None
    usage: Limits
    limits: Limits = Field(description="Limits the site reported at observed_at.")
    applied: Limits = Field(description="Limits Skyfleet last wrote to the site.")
    observed_at: datetime | None
    applied_at: datetime | None
    last_error: str | None


class UsageOut(BaseModel):
    project_id: str
    mode: str
    limits: Limits
    usage: Limits = Field(description="Sum over sites of the last known usage.")
    over_limit: list[str] = Field(description="Resources whose global usage is above the global limit.")
    oldest_observation: datetime | None
    sites: list[SiteUsage]
    unmapped_sites: list[UnmappedSite] = Field(default_factory=list,
                                               description="Managed sites where the project has no known id.")
    warnings: list[str] = Field(default_factory=list)
