"""Engine recovery: an operation's next stage (continuation) and when it was started, the intent an
attempt recorded before changing a site, and the live workers whose heartbeats keep their leases.

Revision ID: 0007_engine_recovery
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0007_engine_recovery"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("continuation", sa.String(64), nullable=True))
        batch.add_column(sa.Column("continued_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_operations_continuation", ["continuation", "continued_at"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("intent", sa.JSON(), nullable=True))
    # Copy jobs stored before stages existed get their continuation: the recovery scan then starts the
    # copying stage of any whose source read had settled (advancing a job is idempotent).
    op.execute("UPDATE operations SET continuation = 'sync.copy' WHERE kind = 'sync.copy'")
    op.create_table(
        "workers",
        sa.Column("id", sa.String(160), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_workers_expires_at", "workers", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_expires_at", table_name="workers")
    op.drop_table("workers")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("intent")
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_continuation")
        batch.drop_column("continued_at")
        batch.drop_column("continuation")
