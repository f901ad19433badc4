"""API shapes of global quotas; the resource names are the ones Nova, Neutron and Cinder use."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

COMPUTE = ("instances", "cores", "ram", "key_pairs", "server_groups", "metadata_items")
NETWORK = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
VOLUME = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes")
RESOURCES = COMPUTE + NETWORK + VOLUME
SERVICE_OF = {**dict.fromkeys(COMPUTE, "compute"), **dict.fromkeys(NETWORK, "network"),
              **dict.fromkeys(VOLUME, "volume")}
# The defaults of a stock OpenStack (nova.conf, neutron.conf, cinder.conf).
BUILTIN_DEFAULTS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "server_groups": 10, "metadata_items": 128,
    "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50, "security_group": 10,
    "security_group_rule": 100, "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
    "backup_gigabytes": 1000,
}
Limits = dict[str, int]


def check_limits(value: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(value) - set(RESOURCES))
    if unknown:
        raise ValueError(f"unknown resource(s) {unknown}; known: {list(RESOURCES)}")
    bad = sorted(k for k, v in value.items() if v < -1)
    if bad:
        raise ValueError(f"limits must be -1 (unlimited) or >= 0: {bad}")
    return value


class QuotaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: Limits = Field(default_factory=dict, description="Per-project overrides; -1 is unlimited.")
    quota_class: str | None = Field(None, max_length=64, description="Class whose limits apply first.")
    mode: Literal["hard", "soft"] | None = None
    policy: Literal["proportional", "even", "weighted"] | None = None
    weights: dict[str, float] | None = Field(None, description="Site name -> weight (policy weighted).")
    project_name: str | None = Field(None, max_length=64,
                                     description="Name in the home Keystone (share-nothing sites match by it).")
    domain_name: str | None = Field(None, max_length=64)

    _limits = field_validator("limits")(classmethod(lambda cls, v: check_limits(v)))

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and any(w < 0 for w in value.values()):
            raise ValueError("weights must be >= 0")
        return value


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


class ClassUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: Limits

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
