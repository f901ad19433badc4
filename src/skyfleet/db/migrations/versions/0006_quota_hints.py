"""Quota change hints: per-site cursors, and per project and site the Neutron counts digest and the
time of the last full read; per project whether its rebalance must be planned again, and the
fleet-wide marks that say when every project must be.

Revision ID: 0006_quota_hints
Revises: 0005_quota
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0006_quota_hints"
down_revision = "0005_quota"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_site_cursors",
        sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("cursors", sa.JSON(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("quota_site_states") as batch:
        batch.add_column(sa.Column("network_digest", sa.String(32), nullable=True))
        batch.add_column(sa.Column("full_read_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("quota_projects") as batch:
        batch.add_column(sa.Column("needs_plan", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "quota_marks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quota_marks")
    with op.batch_alter_table("quota_projects") as batch:
        batch.drop_column("needs_plan")
    with op.batch_alter_table("quota_site_states") as batch:
        batch.drop_column("full_read_at")
        batch.drop_column("network_digest")
    op.drop_table("quota_site_cursors")
