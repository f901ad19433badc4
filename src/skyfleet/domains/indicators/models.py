"""The indicator sample table: one narrow row per (site or project, indicator, time).

Why it exists: the inventory and the health audit keep only each site's latest state; an operator
asking "how full was this site yesterday" or "since when is its Nova slow" needs the history. Rows
are narrow (no JSON) and the time is integer epoch seconds, so bucketing a series is integer
division on every backend (SQLite and PostgreSQL alike) and the table prunes by one indexed column.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base


class IndicatorSample(Base):
    __tablename__ = "indicator_samples"
    __table_args__ = (
        # a series (one name, one site or all of them, a time range) and the "latest per site" look-up
        Index("ix_indicator_samples_name_site_ts", "name", "site_id", "ts"),
        Index("ix_indicator_samples_name_project_ts", "name", "project_id", "ts"),  # a project's series
        Index("ix_indicator_samples_ts", "ts"),  # the retention's prune
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    # exactly one of the two: a site's sample (capacity, API health) or a project's (quota usage)
    site_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"),
                                                nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    ts: Mapped[int] = mapped_column(BigInteger, nullable=False)  # epoch seconds, UTC
    value: Mapped[float] = mapped_column(Float, nullable=False)
