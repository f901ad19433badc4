"""Indicator samples: per-site capacity, API health and audit time as time series.

Revision ID: 0011_indicators
Revises: 0008_quota_two_phase
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_indicators"
down_revision = "0008_quota_two_phase"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_indicator_samples_name_site_ts", "indicator_samples", ["name", "site_id", "ts"])
    op.create_index("ix_indicator_samples_ts", "indicator_samples", ["ts"])


def downgrade() -> None:
    op.drop_table("indicator_samples")
