"""Tables of global quotas: classes (with the ``default`` class), per-project settings, per-site state,
and the collection operations still to be read back.

Why it exists: the global limit is intent; what each site uses and allows is observed inventory with
its time of observation; what Skyfleet last wrote to each site is remembered so unchanged limits are
not written again and an offline site's limit is held in the math. The cursors and digests let a
round read only what may have changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, utcnow


class QuotaClass(Base):
    """Named limits; the class ``default`` holds the defaults of every project."""

    __tablename__ = "quota_classes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class QuotaProject(Base):
    """A project under global quota: overrides, class, mode and share policy."""

    __tablename__ = "quota_projects"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_name: Mapped[str | None] = mapped_column(String(64))
    domain_name: Mapped[str] = mapped_column(String(64), default="Default", nullable=False)
    quota_class: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8), default="hard", nullable=False)
    policy: Mapped[str] = mapped_column(String(16), default="proportional", nullable=False)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    breached: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    # Sites whose collection found the project neither by id nor by name (site id -> name), as last reported.
    unmapped: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}", nullable=False)
    needs_plan: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class QuotaSiteState(Base):
    """What one site said about one project (usage, limits) and what Skyfleet last wrote there."""

    __tablename__ = "quota_site_states"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    remote_project_id: Mapped[str | None] = mapped_column(String(64))
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    applied: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    network_digest: Mapped[str | None] = mapped_column(String(32))  # Neutron counts at the last check
    full_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # every service read
    # Writes not confirmed (in flight, or failed: they may have landed): resource -> the largest such
    # limit. The site counts at the larger of this and its confirmed limit until a write is acknowledged.
    pending: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}", nullable=False)
    # The site's Keystone knows neither the project's id nor its name: the project cannot use the site.
    absent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)


class QuotaSiteCursor(Base):
    """Per site and service, the site's time from which the next round asks what changed; and when the
    site last said what changed (every project it did not name is known unchanged as of then)."""

    __tablename__ = "quota_site_cursors"

    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class QuotaSiteDefaults(Base):
    """The limits a site enforces for a project it was never told about (its quota defaults), read at
    its first collection: a site where a project was never observed counts at these."""

    __tablename__ = "quota_site_defaults"

    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class QuotaMark(Base):
    """A fleet-wide fact a round compares with the last one (e.g. which sites were online)."""

    __tablename__ = "quota_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class QuotaRun(Base):
    """A collection or apply operation whose task results are still to be read into the state rows."""

    __tablename__ = "quota_runs"

    operation_id: Mapped[str] = mapped_column(String(36), ForeignKey("operations.id", ondelete="CASCADE"),
                                              primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    ingested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
