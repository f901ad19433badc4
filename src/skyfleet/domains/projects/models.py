"""The explicit project mapping table: (global project, site) -> the site's project id.

Why it exists: a global project is a project of the home Keystone. Most sites resolve it by rule
(same id where the home Keystone is shared, same name in the same-named domain elsewhere); an admin
records an explicit mapping only where the rule is wrong. Every feature that matches a tenant's
resources across sites (quota, keypairs, flavor access) reads these rows first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, utcnow


class ProjectMapping(Base):
    __tablename__ = "project_mappings"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    remote_project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
