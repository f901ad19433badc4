"""The group memberships a declared user's binding holds in its site, and who made each: ``added``
(Skyfleet added it, so dropping the group from the declaration, or purging the declaration, removes
it), ``adopted`` (it was there before Skyfleet declared it: left alone), ``kept`` (dropped from the
declaration but adopted, so left in the site). NULL for every other kind, and for a user binding
whose task has not reported yet.

Revision ID: 0013_binding_memberships
Revises: 0003_sync
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_binding_memberships"
down_revision = "0003_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_bindings") as batch:
        batch.add_column(sa.Column("memberships", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_bindings") as batch:
        batch.drop_column("memberships")
