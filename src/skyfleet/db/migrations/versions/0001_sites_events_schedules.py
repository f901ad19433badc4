"""Sites, site labels, events and schedules.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("site_group", sa.String(64)),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("auth_public", sa.JSON(), nullable=False),
        sa.Column("auth_encrypted", sa.Text(), nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_seen_at", UTCDateTime()),
        sa.Column("last_audit_at", UTCDateTime()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
        sa.UniqueConstraint("name", name="uq_sites_name"),
    )
    op.create_index("ix_sites_site_group", "sites", ["site_group"])
    op.create_index("ix_sites_availability", "sites", ["availability"])
    op.create_table(
        "site_labels",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("value", sa.String(63), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE",
                                name="fk_site_labels_site_id_sites"),
        sa.PrimaryKeyConstraint("site_id", "key", name="pk_site_labels"),
    )
    op.create_index("ix_site_labels_value", "site_labels", ["value"])
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("site_id", sa.String(36)),
        sa.Column("site_name", sa.String(64)),
        sa.Column("project_id", sa.String(64)),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_project_id", "events", ["project_id"])
    op.create_index("ix_events_site_created", "events", ["site_id", "created_at"])
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=False),
        sa.Column("last_run_at", UTCDateTime()),
        sa.Column("claimed_by", sa.String(128)),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("events")
    op.drop_table("site_labels")
    op.drop_table("sites")
