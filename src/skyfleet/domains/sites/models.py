"""Tables of the site registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from skyfleet.db.base import Base, UTCDateTime, new_id, utcnow


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    group: Mapped[str | None] = mapped_column("site_group", String(64), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    managed: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # Non-secret auth fields (shown to admins) and the whole auth document, encrypted.
    auth_public: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    auth_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    availability: Mapped[str] = mapped_column(String(16), default="unknown", nullable=False, index=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_audit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latency_ms: Mapped[float | None] = mapped_column(Float)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow,
                                                 nullable=False)

    label_rows: Mapped[list[SiteLabel]] = relationship(
        back_populates="site", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def labels(self) -> dict[str, str]:
        return {row.key: row.value for row in self.label_rows}


class SiteLabel(Base):
    """One key=value label of a site; a table of its own so selectors are plain indexed SQL."""

    __tablename__ = "site_labels"

    site_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(63), nullable=False, index=True)

    site: Mapped[Site] = relationship(back_populates="label_rows")
