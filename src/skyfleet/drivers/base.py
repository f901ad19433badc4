"""Plain types the drivers return; the rest of Skyfleet depends on these, not on openstacksdk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Catalog types Skyfleet looks for, in the order they are reported. Cinder may be published
# under any of its historical names.
SERVICE_TYPES: dict[str, tuple[str, ...]] = {
    "identity": ("identity",),
    "compute": ("compute",),
    "image": ("image",),
    "network": ("network",),
    "block-storage": ("block-storage", "volumev3", "volume"),
    "placement": ("placement",),
}


@dataclass(frozen=True)
class ServiceProbe:
    type: str
    endpoint: str | None
    ok: bool
    version: str | None = None
    min_microversion: str | None = None
    max_microversion: str | None = None
    error: str | None = None
    latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type, "endpoint": self.endpoint, "status": "ok" if self.ok else "failed",
            "version": self.version, "min_microversion": self.min_microversion,
            "max_microversion": self.max_microversion, "error": self.error,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True)
class ProbeResult:
    """One health/capability probe of a site."""

    reachable: bool
    services: list[ServiceProbe] = field(default_factory=list)
    availability_zones: list[str] = field(default_factory=list)
    region_name: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    # False: the health audit's cheap check (one authenticated call, ``services`` holds the one service
    # that answered it); the capabilities were not read again and are kept as they were.
    full: bool = True

    @property
    def failed_services(self) -> tuple[str, ...]:
        return tuple(s.type for s in self.services if not s.ok)

    def capabilities(self) -> dict[str, Any]:
        return {
            "services": [s.as_dict() for s in self.services],
            "availability_zones": self.availability_zones,
            "region_name": self.region_name,
        }


# --- the global inventory ------------------------------------------------------------------------

INVENTORY_KINDS: tuple[str, ...] = (
    "servers", "volumes", "images", "networks", "subnets", "ports", "routers", "floating_ips", "security_groups",
    "keypairs", "flavors", "hypervisors", "availability_zones")
INCREMENTAL_KINDS: tuple[str, ...] = ("servers", "volumes")  # read by change since a cursor
CAPACITY_FIELDS = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used")


@dataclass(frozen=True)
class Record:
    """One remote resource as the inventory stores it."""

    kind: str
    remote_id: str
    project_id: str | None
    name: str | None
    status: str | None
    ips: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    updated: str | None = None
