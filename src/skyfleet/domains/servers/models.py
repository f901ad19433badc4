"""The ``servers`` table: one row per server booted through Skyfleet.

A row keeps the request (what to boot), the ranked candidate sites the placement chose, every attempt
with the site's answer, and where the server landed (site, remote id, availability zone). The
remote server carries the row's id in its metadata (``skyfleet_server``): that mark is how a boot
cut short by a crash is found again instead of booted twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, new_id, utcnow

PENDING, WAITING_IMAGE, BOOTING, ACTIVE, FAILED, DELETING, DELETED = (
    "pending", "waiting-image", "booting", "active", "failed", "deleting", "deleted")
MARK = "skyfleet_server"


class Server(Base):
    __tablename__ = "servers"
    __table_args__ = (UniqueConstraint("project_id", "idempotency_key", "batch_index", name="uq_servers_idempotency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    owner: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)  # [{site_id, site_name, ...}]
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    explicit: Mapped[bool] = mapped_column(Boolean, nullable=False)  # an explicit site that may not spill
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    site_id: Mapped[str | None] = mapped_column(String(36))
    site_name: Mapped[str | None] = mapped_column(String(64))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    image_resource_id: Mapped[str | None] = mapped_column(String(36), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    batch_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
