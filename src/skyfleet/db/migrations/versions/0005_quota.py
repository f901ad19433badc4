"""Global quota tables and the explicit project mappings.

Revision ID: 0005_quota
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0005_quota"
down_revision = "0002"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("updated_at", UTCDateTime(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "project_mappings",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("remote_project_id", sa.String(64), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE",
                                name="fk_project_mappings_site_id_sites"),
        sa.PrimaryKeyConstraint("project_id", "site_id", name="pk_project_mappings"),
    )
    op.create_index("ix_project_mappings_site_id", "project_mappings", ["site_id"])
    op.create_table(
        "quota_classes",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("name", name="pk_quota_classes"),
    )
    op.create_table(
        "quota_projects",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("project_name", sa.String(64)),
        sa.Column("domain_name", sa.String(64), nullable=False),
        sa.Column("quota_class", sa.String(64)),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("breached", sa.JSON(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("project_id", name="pk_quota_projects"),
    )
    op.create_table(
        "quota_site_states",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("remote_project_id", sa.String(64)),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("applied", sa.JSON(), nullable=False),
        sa.Column("observed_at", UTCDateTime()),
        sa.Column("applied_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE",
                                name="fk_quota_site_states_site_id_sites"),
        sa.PrimaryKeyConstraint("project_id", "site_id", name="pk_quota_site_states"),
    )
    op.create_index("ix_quota_site_states_site_id", "quota_site_states", ["site_id"])
    op.create_table(
        "quota_runs",
        sa.Column("operation_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ingested_at", UTCDateTime()),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="CASCADE",
                                name="fk_quota_runs_operation_id_operations"),
        sa.PrimaryKeyConstraint("operation_id", name="pk_quota_runs"),
    )
    op.create_index("ix_quota_runs_ingested_at", "quota_runs", ["ingested_at"])


def downgrade() -> None:
    for table in ("quota_runs", "quota_site_states", "quota_projects", "quota_classes", "project_mappings"):
        op.drop_table(table)
