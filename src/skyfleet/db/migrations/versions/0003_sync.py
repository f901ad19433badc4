"""Desired keypairs, flavors and security groups (sync) and their per-site bindings.

Revision ID: 0003_sync
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0003_sync"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_resources",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("owner", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.String(36)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_resources"),
        sa.UniqueConstraint("kind", "scope", "name", name="uq_sync_resources_kind_scope_name"),
    )
    op.create_index("ix_sync_resources_scope", "sync_resources", ["scope"])
    op.create_index("ix_sync_resources_state", "sync_resources", ["state"])
    op.create_table(
        "sync_bindings",
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("site_name", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.String(255)),
        sa.Column("owned", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["sync_resources.id"], ondelete="CASCADE",
                                name="fk_sync_bindings_resource_id_sync_resources"),
        sa.PrimaryKeyConstraint("resource_id", "site_id", name="pk_sync_bindings"),
    )
    op.create_index("ix_sync_bindings_site_id", "sync_bindings", ["site_id"])


def downgrade() -> None:
    op.drop_table("sync_bindings")
    op.drop_table("sync_resources")
