"""Shapes of the indicators API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SeriesOut(BaseModel):
    site_id: str | None = Field(description="The site of a per-site series; null for a project's.")
    site: str | None
    project_id: str | None = Field(None, description="The project of a quota series; null for a site's.")
    name: str
    unit: str
    points: list[tuple[datetime, float]] = Field(
        description="[time, value] pairs, oldest first; with a step, the time is the bucket's start and the "
                    "value the mean of its samples.")


class SeriesList(BaseModel):
    since: datetime
    until: datetime
    step: int | None = Field(None, description="Bucket width in seconds; null: raw samples.")
    points: int = Field(description="Points in the answer, over every series.")
    series: list[SeriesOut]


class NameOut(BaseModel):
    name: str
    unit: str
    description: str
    sites: int = Field(description="Sites (projects, for quota.*) with a sample of it within the recent window.")
    latest: datetime | None = Field(description="Newest sample of any site, within the window.")


class NameList(BaseModel):
    window_seconds: int = Field(description="How far back `sites` and `latest` look.")
    retention_seconds: int
    sample_interval_seconds: int
    names: list[NameOut]
