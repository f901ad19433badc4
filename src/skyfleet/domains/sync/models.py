"""Tables of the sync feature: a desired resource (declared once) and its binding in each site.

A binding is what Skyfleet knows of the resource in one site: the task converging it, the remote
id, and whether Skyfleet created it there (``owned``: only owned copies are ever deleted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, new_id, utcnow

KINDS = ("keypair", "flavor", "security_group", "project", "user", "group", "role_assignment",
         "domain", "image", "network")
ACTIVE, DELETING = "active", "deleting"


class SyncResource(Base):
    __tablename__ = "sync_resources"
    __table_args__ = (UniqueConstraint("kind", "scope", "name", name="uq_sync_resources_kind_scope_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    # The owning project's id for tenant resources, "" for fleet-wide ones (flavors, noauth); a declared
    # project, user or group's domain (``domain:<name>``, "" for ``Default``): its name is unique there.
    scope: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    owner: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    placement: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE, nullable=False, index=True)
    generation: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class SyncBinding(Base):
    __tablename__ = "sync_bindings"

    resource_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("sync_resources.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    site_name: Mapped[str] = mapped_column(String(64), nullable=False)
    task_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(16), default="ensure", nullable=False)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    owned: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    # A declared user's group memberships in this site, by group name: "added" (Skyfleet added it and
    # removes it when the group is dropped or the declaration purged), "adopted" (there before
    # Skyfleet declared it: never removed), "kept" (dropped from the declaration, left as adopted).
    memberships: Mapped[dict[str, str] | None] = mapped_column(JSON)
