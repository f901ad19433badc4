"""Indicator samples of a project: quota usage per project and resource on the same table, retention
and prune as the per-site samples. ``site_id`` becomes nullable and ``project_id`` holds the project
of a project-scoped sample (exactly one of the two is set), with its own series index.

Revision ID: 0014_project_indicators
Revises: 0011_indicators
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_project_indicators"
down_revision = "0011_indicators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("indicator_samples") as batch:
        batch.alter_column("site_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("project_id", sa.String(64), nullable=True))
    op.create_index("ix_indicator_samples_name_project_ts", "indicator_samples", ["name", "project_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_indicator_samples_name_project_ts", table_name="indicator_samples")
    op.execute("DELETE FROM indicator_samples WHERE site_id IS NULL")
    with op.batch_alter_table("indicator_samples") as batch:
        batch.drop_column("project_id")
        batch.alter_column("site_id", existing_type=sa.String(36), nullable=False)
