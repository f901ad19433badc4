"""Request and response shapes of the site registry. Secrets are write-only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

from skyfleet.domains.text import Name, Text

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"
Availability = Literal["online", "degraded", "offline", "unknown"]
SECRET_FIELDS = ("password", "application_credential_secret")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteAuth(Strict):
    """How Skyfleet authenticates to a site: a clouds.yaml ``auth`` block plus region and interface."""

    auth_url: AnyHttpUrl
    username: Name | None = Field(None, max_length=255)
    user_id: Name | None = Field(None, max_length=64)
    password: SecretStr | None = Field(None, min_length=1, max_length=4096)
    application_credential_id: Name | None = Field(None, max_length=64)
    application_credential_name: Name | None = Field(None, max_length=255)
    application_credential_secret: SecretStr | None = Field(None, min_length=1, max_length=4096)
    project_name: Name | None = Field(None, max_length=255)
    project_id: Name | None = Field(None, max_length=64)
    user_domain_name: Name | None = Field(None, max_length=255)
    user_domain_id: Name | None = Field(None, max_length=64)
    project_domain_name: Name | None = Field(None, max_length=255)
    project_domain_id: Name | None = Field(None, max_length=64)
    region_name: Name | None = Field(None, max_length=255)
    interface: Literal["public", "internal", "admin"] = "public"
    verify: bool = True
    cacert: Text | None = Field(None, max_length=65536, description="PEM bundle, or a path readable by Skyfleet.")

    @model_validator(mode="after")
    def _one_method(self) -> SiteAuth:
        app_cred = self.application_credential_id or self.application_credential_name
        if app_cred:
            if self.application_credential_secret is None:
                raise ValueError("an application credential needs application_credential_secret")
            if self.application_credential_name and not self.application_credential_id and not (
                self.username or self.user_id
            ):
                raise ValueError("application_credential_name needs username or user_id")
        else:
            if not (self.username or self.user_id) or self.password is None:
                raise ValueError(
                    "give username (or user_id) and password, or application_credential_id and "
                    "application_credential_secret"
                )
        return self

    @property
    def auth_type(self) -> str:
        return "v3applicationcredential" if self.application_credential_secret else "v3password"

    def document(self) -> dict[str, Any]:
        """The whole auth, secrets included, for encryption at rest."""
        data = self.model_dump(mode="json", exclude_none=True)
        for key in SECRET_FIELDS:
            secret = getattr(self, key)
            if secret is not None:
                data[key] = secret.get_secret_value()
        return data

    def public(self) -> dict[str, Any]:
        """The auth without secrets, safe to show."""
        data = self.model_dump(mode="json", exclude_none=True, exclude=set(SECRET_FIELDS))
        data["auth_type"] = self.auth_type
        return data


class Location(Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


Labels = dict[Name, Name]


class SiteCreate(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "paris-1", "labels": {"tier": "edge", "country": "fr"}, "group": "eu",
        "auth": {"auth_url": "https://paris.example.net:5000/v3", "username": "skyfleet", "password": "secret",
                 "project_name": "admin", "user_domain_name": "Default", "project_domain_name": "Default"}}]})

    name: Name = Field(pattern=NAME_PATTERN)
    auth: SiteAuth
    labels: Labels = Field(default_factory=dict)
    group: Name | None = Field(None, pattern=NAME_PATTERN)
    description: Text = Field("", max_length=2000)
    location: Location | None = None
    managed: bool = True

    @model_validator(mode="after")
    def _check_labels(self) -> SiteCreate:
        check_labels(self.labels)
        return self


class SiteUpdate(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"labels": {"tier": "core"}, "description": "second room", "managed": True}]})

    name: Name | None = Field(None, pattern=NAME_PATTERN)
    auth: SiteAuth | None = None
    labels: Labels | None = None
    group: Name | None = Field(None, pattern=NAME_PATTERN)
    description: Text | None = Field(None, max_length=2000)
    location: Location | None = None
    managed: bool | None = None

    @model_validator(mode="after")
    def _check_labels(self) -> SiteUpdate:
        if self.labels is not None:
            check_labels(self.labels)
        return self


def check_labels(labels: Labels) -> None:
    """At most 64 labels, keys and values matching their patterns (the whole string: no trailing newline)."""
    if len(labels) > 64:
        raise ValueError("at most 64 labels per site")
    for key, value in labels.items():
        if not re.fullmatch(LABEL_KEY_PATTERN, key):
            raise ValueError(f"label key {key!r} must match {LABEL_KEY_PATTERN}")
        if not re.fullmatch(LABEL_VALUE_PATTERN, value):
            raise ValueError(f"label value {value!r} of {key!r} must match {LABEL_VALUE_PATTERN}")


class ServiceInfo(BaseModel):
    type: str
    endpoint: str | None = None
    version: str | None = None
    min_microversion: str | None = None
    max_microversion: str | None = None
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    latency_ms: float | None = None


class Capabilities(BaseModel):
    services: list[ServiceInfo] = Field(default_factory=list)
    availability_zones: list[str] = Field(default_factory=list)
    region_name: str | None = None


class SiteOut(BaseModel):
    id: str
    name: str
    description: str
    labels: dict[str, str]  # shown as stored (no input check on the way out)
    group: str | None
    location: Location | None
    managed: bool
    auth: dict[str, Any] = Field(description="Auth settings without secrets.")
    availability: Availability
    consecutive_failures: int
    last_error: str | None
    last_seen_at: datetime | None
    last_audit_at: datetime | None
    latency_ms: float | None
    capabilities: Capabilities
    created_at: datetime
    updated_at: datetime


class SiteList(BaseModel):
    sites: list[SiteOut]
    next_marker: str | None = Field(None, description="Pass as `marker` to get the next page.")
