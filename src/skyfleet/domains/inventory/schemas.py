"""API shapes of the global view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ItemOut(BaseModel):
    kind: str
    site_id: str
    site: str
    remote_id: str
    project_id: str | None
    name: str | None
    status: str | None
    ips: list[str]
    data: dict[str, Any]
    changed_at: datetime | None = Field(None, description="When Skyfleet last saw this resource change.")
    observed_at: datetime | None = Field(None, description="The site's last successful refresh of this kind.")
    age_seconds: float | None = Field(None, description="Seconds since observed_at.")
    stale: bool = Field(False, description="The site is offline or has not been refreshed for long.")
    live: bool = Field(False, description="Read from the site just now (?live=true).")


class ItemList(BaseModel):
    items: list[ItemOut]
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page.")


class SiteSummary(BaseModel):
    site_id: str
    site: str
    availability: str
    refreshed_at: datetime | None
    full_refreshed_at: datetime | None
    stale: bool
    last_error: str | None = None
    counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="kind -> status -> count")
    capacity: dict[str, int] | None = None
    utilization: dict[str, float] | None = None


class Summary(BaseModel):
    totals: dict[str, dict[str, int]] = Field(description="kind -> status -> count, fleet-wide")
    capacity: dict[str, int] | None = None
    utilization: dict[str, float] | None = None
    sites: list[SiteSummary]
