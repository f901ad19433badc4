"""Quota writes not yet confirmed (``pending``), projects a site's Keystone does not know
(``absent``), the sites a project was not found on (``unmapped``), and each site's quota defaults
(what a site never observed for a project enforces).

Revision ID: 0008_quota_two_phase
Revises: 0006_quota_hints, 0007_engine_recovery
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0008_quota_two_phase"
down_revision = ("0006_quota_hints", "0007_engine_recovery")  # the quota tables, and the latest before it
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quota_site_states") as batch:
        batch.add_column(sa.Column("pending", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("absent", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("quota_projects") as batch:
        batch.add_column(sa.Column("unmapped", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "quota_site_defaults",
        sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quota_site_defaults")
    with op.batch_alter_table("quota_projects") as batch:
        batch.drop_column("unmapped")
    with op.batch_alter_table("quota_site_states") as batch:
        batch.drop_column("absent")
        batch.drop_column("pending")
