"""The address view: addresses and subnets derived from the inventory, routing domains (declared
members and their resolved networks), the known address conflicts, and global address pools with
their per-site allocations.

Revision ID: 0010_addresses
Revises: 0008_quota_two_phase
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skyfleet.db.base import UTCDateTime

revision = "0010_addresses"
down_revision = "0008_quota_two_phase"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _site(primary_key: bool = False, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id", ondelete="CASCADE"),
                     primary_key=primary_key, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "address_items",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        _site(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64)),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("ip_key", sa.String(32), nullable=False),
        sa.Column("mac", sa.String(32)),
        sa.Column("network_id", sa.String(255)),
        sa.Column("subnet_id", sa.String(255)),
        sa.Column("subnet_cidr", sa.String(64)),
        sa.Column("port_id", sa.String(255)),
        sa.Column("device_id", sa.String(255)),
        sa.Column("device_owner", sa.String(255)),
        sa.Column("device_name", sa.String(255)),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("site_id", "kind", "source_id", "ip", name="uq_address_items_source"),
    )
    op.create_index("ix_address_items_version_key", "address_items", ["ip_version", "ip_key"])
    op.create_index("ix_address_items_mac", "address_items", ["mac"])
    op.create_index("ix_address_items_project", "address_items", ["project_id"])
    op.create_index("ix_address_items_site_network", "address_items", ["site_id", "network_id"])
    op.create_index("ix_address_items_device", "address_items", ["device_id"])
    op.create_index("ix_address_items_device_name", "address_items", ["device_name"])
    op.create_table(
        "address_subnets",
        _site(primary_key=True),
        sa.Column("subnet_id", sa.String(255), primary_key=True),
        sa.Column("network_id", sa.String(255)),
        sa.Column("project_id", sa.String(64)),
        sa.Column("name", sa.String(255)),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("first_key", sa.String(32), nullable=False),
        sa.Column("last_key", sa.String(32), nullable=False),
        sa.Column("gateway_ip", sa.String(64)),
    )
    op.create_index("ix_address_subnets_site_network", "address_subnets", ["site_id", "network_id"])
    op.create_index("ix_address_subnets_project", "address_subnets", ["project_id"])
    op.create_index("ix_address_subnets_version_first", "address_subnets", ["ip_version", "first_key"])
    op.create_table(
        "routing_domains",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_routing_domains_project_name", "routing_domains", ["project_id", "name"])
    op.create_table(
        "routing_domain_members",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("domain_id", sa.String(36), sa.ForeignKey("routing_domains.id", ondelete="CASCADE"),
                  nullable=False),
        _site(nullable=True),
        sa.Column("network_id", sa.String(255)),
        sa.Column("project_id", sa.String(64)),
    )
    op.create_index("ix_routing_domain_members_domain", "routing_domain_members", ["domain_id"])
    op.create_table(
        "routing_domain_networks",
        sa.Column("domain_id", sa.String(36), sa.ForeignKey("routing_domains.id", ondelete="CASCADE"),
                  primary_key=True),
        _site(primary_key=True),
        sa.Column("network_id", sa.String(255), primary_key=True),
    )
    op.create_index("ix_routing_domain_networks_site_network", "routing_domain_networks", ["site_id", "network_id"])
    op.create_table(
        "address_conflicts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("domain_id", sa.String(36)),
        sa.Column("project_id", sa.String(64)),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("key", name="uq_address_conflicts_key"),
    )
    op.create_index("ix_address_conflicts_project", "address_conflicts", ["project_id"])
    op.create_table(
        "address_pools",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64)),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_address_pools_project_name", "address_pools", ["project_id", "name"])
    op.create_table(
        "address_allocations",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("pool_id", sa.String(36), sa.ForeignKey("address_pools.id", ondelete="CASCADE"), nullable=False),
        _site(),
        sa.Column("project_id", sa.String(64)),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("first_key", sa.String(32), nullable=False),
        sa.Column("last_key", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("pool_id", "first_key", name="uq_address_allocations_pool_first"),
    )
    op.create_index("ix_address_allocations_site", "address_allocations", ["site_id"])


def downgrade() -> None:
    for table in ("address_allocations", "address_pools", "address_conflicts", "routing_domain_networks",
                  "routing_domain_members", "routing_domains",
                  "address_subnets", "address_items"):
        op.drop_table(table)
