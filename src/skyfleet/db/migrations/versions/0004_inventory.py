"""The global inventory: observed remote resources per site, and per-site refresh state.

Revision ID: 0004_inventory
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0004_inventory"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("remote_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64)),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(32)),
        sa.Column("ips", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_inventory_items_site_id_sites",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_items"),
        sa.UniqueConstraint("site_id", "kind", "remote_id", name="uq_inventory_items_site_kind_remote"),
    )
    op.create_index("ix_inventory_items_kind_project_status", "inventory_items", ["kind", "project_id", "status"])
    op.create_index("ix_inventory_items_kind_site_status", "inventory_items", ["kind", "site_id", "status"])
    op.create_index("ix_inventory_items_kind_name", "inventory_items", ["kind", "name"])
    op.create_index("ix_inventory_items_kind_changed", "inventory_items", ["kind", "changed_at"])
    op.create_table(
        "inventory_sync",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("cursors", sa.JSON(), nullable=False),
        sa.Column("full_at", UTCDateTime()),
        sa.Column("refreshed_at", UTCDateTime()),
        sa.Column("attempted_at", UTCDateTime()),
        sa.Column("last_calls", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_inventory_sync_site_id_sites",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", name="pk_inventory_sync"),
    )


def downgrade() -> None:
    op.drop_table("inventory_sync")
    op.drop_table("inventory_items")
