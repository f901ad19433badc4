"""Shapes of the events API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    kind: str
    severity: str
    site_id: str | None
    site_name: str | None
    project_id: str | None
    message: str
    details: dict[str, Any]


class EventList(BaseModel):
    events: list[EventOut]
    next_marker: int | None = Field(None, description="Pass as `marker` to get older events.")
