"""Address search and conflict detection at 1,000 sites. The pages' order (version, address key, id)
is now an index to its last column, alone and after the site: the first page of a CIDR held on every
site (10.0.0.0/24 on 1,000 sites) is read in order from the index and stops at the page's end,
instead of sorting every match (PostgreSQL sorted 7,680 rows for a page of 100; SQLite had no index
for a site's addresses in order). And one index on (kind, site, network, version, key, MAC) holds
every column the detection's GROUP BYs read (duplicate public IPs read only the public addresses'
entries instead of every row of the table).

Revision ID: 0012_address_site_key
Revises: 0010_addresses
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012_address_site_key"
down_revision = "0010_addresses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_address_items_version_key", table_name="address_items")
    op.create_index("ix_address_items_version_key", "address_items", ["ip_version", "ip_key", "id"])
    op.create_index("ix_address_items_site_key", "address_items", ["site_id", "ip_version", "ip_key", "id"])
    op.create_index("ix_address_items_kind_place", "address_items",
                    ["kind", "site_id", "network_id", "ip_version", "ip_key", "mac"])


def downgrade() -> None:
    op.drop_index("ix_address_items_kind_place", table_name="address_items")
    op.drop_index("ix_address_items_site_key", table_name="address_items")
    op.drop_index("ix_address_items_version_key", table_name="address_items")
    op.create_index("ix_address_items_version_key", "address_items", ["ip_version", "ip_key"])
