"""A declared project, user or group is named within its Keystone domain: ``alice`` may be declared
in domain A and in domain B as two declarations. Its ``scope`` (part of the unique key with kind and
name) becomes ``domain:<name>`` outside the ``Default`` domain; it stays ``""`` in ``Default``, as
every such row was before. The column widens to hold a 64-character domain name after the prefix.

Revision ID: 0015_identity_domain_scope
Revises: 0013_binding_memberships
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015_identity_domain_scope"
down_revision = "0013_binding_memberships"
branch_labels = None
depends_on = None

KINDS = ("project", "user", "group")


def _rows() -> list[Any]:
    bind = op.get_bind()
    query = sa.text("SELECT id, spec FROM sync_resources WHERE kind IN ('project', 'user', 'group')")
    return list(bind.execute(query))


def _domain(spec: Any) -> str:
    data = json.loads(spec) if isinstance(spec, str) else (spec or {})
    return str(data.get("domain") or "Default")


def upgrade() -> None:
    with op.batch_alter_table("sync_resources") as batch:
        batch.alter_column("scope", type_=sa.String(80), existing_type=sa.String(64), existing_nullable=False)
    bind = op.get_bind()
    for ident, spec in _rows():
        domain = _domain(spec)
        if domain != "Default":
            bind.execute(
                sa.text("UPDATE sync_resources SET scope = :scope WHERE id = :id"),
                {"scope": f"domain:{domain}", "id": ident},
            )


def downgrade() -> None:
    """Fails on the unique key when one name is declared in two domains (delete one first)."""
    op.get_bind().execute(sa.text("UPDATE sync_resources SET scope = '' WHERE kind IN ('project', 'user', 'group')"))
    with op.batch_alter_table("sync_resources") as batch:
        batch.alter_column("scope", type_=sa.String(64), existing_type=sa.String(80), existing_nullable=False)
