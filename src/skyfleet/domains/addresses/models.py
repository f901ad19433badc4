"""Tables of the address view: addresses and subnets derived from the inventory, routing domains,
and the conflicts already known (so that each raises one event when it appears and one when it goes).

``address_items`` and ``address_subnets`` are derived: rebuilt from a site's inventory rows whenever
its network resources change, never written by users. They exist so that a search by IP, CIDR or MAC
over a whole fleet is one indexed query instead of parsing every port's JSON on every request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skyfleet.db.base import Base, UTCDateTime, new_id, utcnow

ID = BigInteger().with_variant(Integer, "sqlite")


class AddressItem(Base):
    """One address in use on a site: a port's fixed IP, a floating IP, or a router's gateway IP."""

    __tablename__ = "address_items"
    __table_args__ = (
        UniqueConstraint("site_id", "kind", "source_id", "ip", name="uq_address_items_source"),
        Index("ix_address_items_version_key", "ip_version", "ip_key", "id"),  # the pages' order, to the last column
        Index("ix_address_items_mac", "mac"),
        Index("ix_address_items_project", "project_id"),
        Index("ix_address_items_site_network", "site_id", "network_id"),
        Index("ix_address_items_site_key", "site_id", "ip_version", "ip_key", "id"),  # a site's page, in order
        # conflict detection groups by these: read from the index alone, public addresses apart
        Index("ix_address_items_kind_place", "kind", "site_id", "network_id", "ip_version", "ip_key", "mac"),
        Index("ix_address_items_device", "device_id"),
        Index("ix_address_items_device_name", "device_name"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # fixed, floating, gateway
    source_id: Mapped[str] = mapped_column(String(255), nullable=False)  # the port or floating IP
    project_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), nullable=False)
    ip_version: Mapped[int] = mapped_column(Integer, nullable=False)
    ip_key: Mapped[str] = mapped_column(String(32), nullable=False)
    mac: Mapped[str | None] = mapped_column(String(32))
    network_id: Mapped[str | None] = mapped_column(String(255))
    subnet_id: Mapped[str | None] = mapped_column(String(255))
    subnet_cidr: Mapped[str | None] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[str | None] = mapped_column(String(255))
    device_owner: Mapped[str | None] = mapped_column(String(255))
    device_name: Mapped[str | None] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class AddressSubnet(Base):
    """A subnet of a site with its range as keys (overlap detection and utilisation read this)."""

    __tablename__ = "address_subnets"
    __table_args__ = (Index("ix_address_subnets_site_network", "site_id", "network_id"),
                      Index("ix_address_subnets_project", "project_id"),
                      Index("ix_address_subnets_version_first", "ip_version", "first_key"))

    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    subnet_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    cidr: Mapped[str] = mapped_column(String(64), nullable=False)
    ip_version: Mapped[int] = mapped_column(Integer, nullable=False)
    first_key: Mapped[str] = mapped_column(String(32), nullable=False)
    last_key: Mapped[str] = mapped_column(String(32), nullable=False)
    gateway_ip: Mapped[str | None] = mapped_column(String(64))


class RoutingDomain(Base):
    """A named set of networks across sites that are meant to route to one another."""

    __tablename__ = "routing_domains"
    __table_args__ = (Index("ix_routing_domains_project_name", "project_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(64))  # the owner; None: a fleet admin's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class RoutingDomainMember(Base):
    """What a user declared: one network of one site, or every network of one project."""

    __tablename__ = "routing_domain_members"
    __table_args__ = (Index("ix_routing_domain_members_domain", "domain_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    domain_id: Mapped[str] = mapped_column(String(36), ForeignKey("routing_domains.id", ondelete="CASCADE"),
                                           nullable=False)
    site_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"))
    network_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(64))


class RoutingDomainNetwork(Base):
    """The members resolved to (site, network) pairs, kept by the conflict detection (derived)."""

    __tablename__ = "routing_domain_networks"
    __table_args__ = (Index("ix_routing_domain_networks_site_network", "site_id", "network_id"),)

    domain_id: Mapped[str] = mapped_column(String(36), ForeignKey("routing_domains.id", ondelete="CASCADE"),
                                           primary_key=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class AddressConflict(Base):
    """A conflict seen by the last detection; its key is stable while the conflict lasts."""

    __tablename__ = "address_conflicts"
    __table_args__ = (Index("ix_address_conflicts_project", "project_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    domain_id: Mapped[str | None] = mapped_column(String(36))  # no foreign key: cleared, not cascaded
    project_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class AddressPool(Base):
    """A global pool (``10.128.0.0/9``, ``fd00:abcd::/48``) that hands out per-site prefixes."""

    __tablename__ = "address_pools"
    __table_args__ = (Index("ix_address_pools_project_name", "project_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(64))  # the owner; None: shared by a fleet admin
    cidr: Mapped[str] = mapped_column(String(64), nullable=False)
    ip_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class AddressAllocation(Base):
    """A prefix of a pool handed to a site. The unique start per pool backs the pool lock: two
    allocations racing past it for the same prefix cannot both commit."""

    __tablename__ = "address_allocations"
    __table_args__ = (UniqueConstraint("pool_id", "first_key", name="uq_address_allocations_pool_first"),
                      Index("ix_address_allocations_site", "site_id"))

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(String(36), ForeignKey("address_pools.id", ondelete="CASCADE"),
                                         nullable=False)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(64))  # who asked
    cidr: Mapped[str] = mapped_column(String(64), nullable=False)
    first_key: Mapped[str] = mapped_column(String(32), nullable=False)
    last_key: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
