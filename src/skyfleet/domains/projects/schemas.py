"""API shapes of project mappings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class MappingSet(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"remote_project_id": "3f2a9c04b7e14d0c9a6b1c2d3e4f5a6b"}]})

    remote_project_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                                   description="The project's id in that site's Keystone.")


class MappingOut(BaseModel):
    project_id: str
    site_id: str
    site_name: str
    remote_project_id: str
    source: str = Field(description="explicit (an admin set it), shared-keystone (same id) or by-name "
                        "(resolved in the site by project and domain name)")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MappingList(BaseModel):
    project_id: str
    mappings: list[MappingOut]
