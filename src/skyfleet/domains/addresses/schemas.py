"""API shapes of the address view, its utilisation summary, conflicts and routing domains."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skyfleet.domains.text import Name, Text


class AddressOut(BaseModel):
    site_id: str
    site: str
    project_id: str | None
    kind: str = Field(description="fixed (a port's address), floating, or gateway (a router's public IP)")
    ip: str
    ip_version: int
    mac: str | None = None
    network_id: str | None = None
    subnet_id: str | None = None
    subnet_cidr: str | None = None
    port_id: str | None = None
    device_id: str | None = Field(None, description="The server (or router, DHCP agent...) using the port")
    device_owner: str | None = None
    device_name: str | None = None
    observed_at: datetime | None = Field(None, description="The site's last full inventory refresh.")
    age_seconds: float | None = None
    stale: bool = Field(False, description="The site is offline or has not been refreshed for long.")


class AddressList(BaseModel):
    items: list[AddressOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")


class Count(BaseModel):
    used: int
    free: int | str = Field(description="An integer, or a decimal string beyond 2**53 (large IPv6 subnets).")


class SubnetUsage(BaseModel):
    site_id: str
    site: str
    subnet_id: str
    name: str | None
    network_id: str | None
    project_id: str | None
    cidr: str
    ip_version: int
    gateway_ip: str | None
    used: int
    free: int | str = Field(description="Neutron's default pool minus used; a decimal string beyond 2**53.")


class SiteUsage(BaseModel):
    site_id: str
    site: str
    availability: str
    observed_at: datetime | None
    v4: Count | None = None
    v6: Count | None = None


class AddressSummary(BaseModel):
    sites: list[SiteUsage]
    subnets: list[SubnetUsage]


class ConflictOut(BaseModel):
    key: str = Field(description="Stable while the conflict lasts.")
    kind: str = Field(description="overlapping_subnets, duplicate_ip, duplicate_mac or duplicate_public_ip")
    domain_id: str | None
    project_id: str | None
    summary: str
    members: list[dict[str, Any]]
    count: int = Field(description="How many members the conflict has (at most 50 are listed).")
    hidden: int = Field(0, description="Members of other projects, not shown to a tenant.")
    first_seen_at: datetime
    last_seen_at: datetime


class ConflictList(BaseModel):
    items: list[ConflictOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")


class Member(BaseModel):
    """One network of one site (``site`` and ``network``), or every network of a project (``project``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"site": "paris", "network": "6f1c2e1a-2f0e-4b8e-9a55-0d1e2f3a4b5c"}, {"project": "3f2a9c04b7e1"}]})

    site: Name | None = Field(None, min_length=1, max_length=255, description="Site id or name")
    network: Name | None = Field(None, min_length=1, max_length=255, description="Network id on that site")
    project: Name | None = Field(None, min_length=1, max_length=64, description="Every network of this project")

    @model_validator(mode="after")
    def _one_shape(self) -> Member:
        if self.project is not None and (self.site is not None or self.network is not None):
            raise ValueError("a member is either {site, network} or {project}, not both")
        if self.project is None and (self.site is None or self.network is None):
            raise ValueError("a member needs both site and network (or project alone)")
        return self


class RoutingDomainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "vpn-eu", "members": [{"site": "paris", "network": "6f1c2e1a-2f0e-4b8e-9a55-0d1e2f3a4b5c"},
                                       {"site": "lyon", "network": "0b7d3c55-8e0e-4d7f-8f66-1a2b3c4d5e6f"}]}]})

    name: Name = Field(min_length=1, max_length=64)
    description: Text = Field("", max_length=255)
    project: Name | None = Field(None, min_length=1, max_length=64,
                                 description="Owner (fleet admins; a tenant's domains are its own project's)")
    members: list[Member] = Field(default_factory=list, max_length=1000)


class RoutingDomainPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(None, min_length=1, max_length=64)
    description: Text | None = Field(None, max_length=255)
    members: list[Member] | None = Field(None, max_length=1000, description="Replaces every member")


class MemberOut(BaseModel):
    site_id: str | None = None
    site: str | None = None
    network: str | None = None
    project: str | None = None


class RoutingDomainOut(BaseModel):
    id: str
    name: str
    description: str
    project_id: str | None
    members: list[MemberOut]
    networks: int = Field(description="(site, network) pairs the members resolve to, as of the last detection")
    conflicts: int = Field(description="Conflicts known in this domain")
    created_at: datetime
    updated_at: datetime


class RoutingDomainList(BaseModel):
    items: list[RoutingDomainOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "wan", "cidr": "10.128.0.0/9"}, {"name": "wan6", "cidr": "fd00:abcd::/48", "shared": True}]})

    name: Name = Field(min_length=1, max_length=64)
    cidr: Name = Field(min_length=1, max_length=64, description="v4 or v6, e.g. 10.128.0.0/9 or fd00:abcd::/48")
    description: Text = Field("", max_length=255)
    project: Name | None = Field(None, min_length=1, max_length=64, description="Owner (fleet admins)")
    shared: bool = Field(False, description="Every tenant may allocate from it (fleet admins)")


class PoolOut(BaseModel):
    id: str
    name: str
    description: str
    project_id: str | None = Field(description="The owner; null for a shared pool")
    cidr: str
    ip_version: int
    allocated: int = Field(description="Prefixes handed out (that the caller sees)")
    created_at: datetime


class PoolList(BaseModel):
    items: list[PoolOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"site": "paris", "prefix_length": 24}]})

    # Both are required; checked once the pool is known to be the caller's (another tenant's pool is
    # 404 whatever the body says).
    site: Name | None = Field(None, min_length=1, max_length=255, description="Site id or name (required)")
    prefix_length: int | None = Field(None, ge=0, le=128, description="Length of the prefix (required)")


class AllocationOut(BaseModel):
    id: int
    pool_id: str
    site_id: str
    site: str | None
    project_id: str | None
    cidr: str
    created_at: datetime


class AllocationList(BaseModel):
    items: list[AllocationOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")
