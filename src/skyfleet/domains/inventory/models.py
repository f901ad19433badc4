"""Inventory tables: one row per observed remote resource, and one refresh record per site.

Freshness lives on ``inventory_sync`` (one row per site) rather than on every resource row, so an
unchanged site costs no row writes: a resource's ``observed_at`` is its site's last successful
refresh of that kind, and ``changed_at`` is when Skyfleet last saw the resource change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, utcnow


class InventoryItem(Base):
    __tablename__ = "inventory_items"
    __table_args__ = (
        UniqueConstraint("site_id", "kind", "remote_id", name="uq_inventory_items_site_kind_remote"),
        Index("ix_inventory_items_kind_project_status", "kind", "project_id", "status"),
        Index("ix_inventory_items_kind_site_status", "kind", "site_id", "status"),
        Index("ix_inventory_items_kind_name", "kind", "name"),
        Index("ix_inventory_items_kind_changed", "kind", "changed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    remote_id: Mapped[str] = mapped_column(String(255), nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32))
    ips: Mapped[str] = mapped_column(Text, default="", nullable=False)  # " ip1 ip2 " for exact-word search
    digest: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class InventorySync(Base):
    """How far the inventory of one site is: cursors of incremental reads, last refreshes, last error."""

    __tablename__ = "inventory_sync"

    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"),
                                         primary_key=True)
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    full_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_calls: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
