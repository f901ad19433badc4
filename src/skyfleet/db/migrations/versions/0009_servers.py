"""Servers booted through Skyfleet: the request, the ranked sites, every attempt, where it landed.

Revision ID: 0009_servers
Revises: 0008_quota_two_phase
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0009_servers"
down_revision = "0008_quota_two_phase"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("site_id", sa.String(36)),
        sa.Column("site_name", sa.String(64)),
        sa.Column("remote_id", sa.String(64)),
        sa.Column("availability_zone", sa.String(255)),
        sa.Column("image_resource_id", sa.String(36), index=True),
        sa.Column("last_error", sa.Text()),
        sa.Column("operation_id", sa.String(36)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "idempotency_key", "batch_index", name="uq_servers_idempotency"),
    )


def downgrade() -> None:
    op.drop_table("servers")
