"""Request and response shapes of the operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.text import Name


class TaskCounts(BaseModel):
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    site_id: str
    site_name: str
    kind: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    result: dict[str, Any] | None
    updated_at: datetime
    finished_at: datetime | None


class OperationOut(BaseModel):
    id: str
    kind: str
    state: str = Field(description="running until every task is done; then succeeded, failed or cancelled.")
    user_id: str | None
    project_id: str | None
    payload: dict[str, Any]
    total: int
    counts: TaskCounts
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class OperationDetail(OperationOut):
    tasks: list[TaskOut]


class OperationList(BaseModel):
    operations: list[OperationOut]
    next_marker: str | None = Field(None, description="Pass as `marker` to get the next (older) page.")


class OperationCreate(BaseModel):
    """Run task kind ``kind`` with ``payload`` on the named sites, or on the sites a selector picks."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "site.probe", "selector": "tier=edge"}]})

    kind: Name = Field(min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    sites: list[Annotated[Name, Field(max_length=255)]] | None = Field(None, max_length=10_000,
                                                                      description="Site names or ids.")
    selector: Name | None = Field(None, max_length=4096,
                                  description="Label selector, e.g. tier=edge; all managed sites if empty.")
