"""Derive a site's addresses and subnets from its inventory rows, and store only what changed.

Why it exists: the inventory keeps each port, floating IP and router as a JSON document; the
address view needs one row per address with its site, network, subnet, port and device. Rebuilding
a site costs one query per kind over that site's rows and writes only the differences, so an
unchanged site costs reads only. Neutron's own ports decide the kind of an address:

- a port owned by ``network:router_gateway`` holds a router's gateway (public) IP: kind ``gateway``,
  in the router's project (Neutron gives the gateway port no project);
- a port owned by ``network:floatingip`` is Neutron's internal holder of a floating IP: skipped, the
  floating IP row stands for it (kind ``floating``, in the floating IP's project);
- every other port's fixed IPs are kind ``fixed`` (servers, DHCP, router interfaces, bare ports).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from skyfleet.domains.addresses import netmath
from skyfleet.domains.addresses.models import AddressItem, AddressSubnet
from skyfleet.domains.inventory.models import InventoryItem

SOURCES = ("ports", "floating_ips", "routers", "servers", "subnets")
NETWORK_KINDS = frozenset({"networks", "subnets", "ports", "floating_ips", "routers"})
GATEWAY_OWNER = "network:router_gateway"
FLOATING_OWNER = "network:floatingip"
CHUNK = 500
ITEM_FIELDS = ("kind", "source_id", "project_id", "ip", "ip_version", "ip_key", "mac", "network_id", "subnet_id",
               "subnet_cidr", "port_id", "device_id", "device_owner", "device_name")
SUBNET_FIELDS = ("subnet_id", "network_id", "project_id", "name", "cidr", "ip_version", "first_key", "last_key",
                 "gateway_ip")


@dataclass
class _Subnet:
    row: dict[str, Any]
    network: netmath.IPNetwork


@dataclass
class BuildCounts:
    written: int = 0  # address and subnet rows inserted or deleted
    unchanged: int = 0


def _load(session: Session, site_id: str) -> dict[str, list[tuple[str, str | None, str | None, dict[str, Any]]]]:
    found: dict[str, list[tuple[str, str | None, str | None, dict[str, Any]]]] = {k: [] for k in SOURCES}
    query = (select(InventoryItem.kind, InventoryItem.remote_id, InventoryItem.project_id, InventoryItem.name,
                    InventoryItem.data)
             .where(InventoryItem.site_id == site_id, InventoryItem.kind.in_(SOURCES)))
    for kind, remote_id, project, name, data in session.execute(query):
        found[kind].append((remote_id, project, name, data or {}))
    return found


def _subnets(rows: list[tuple[str, str | None, str | None, dict[str, Any]]]) -> dict[str, _Subnet]:
    subnets: dict[str, _Subnet] = {}
    for remote_id, project, name, data in rows:
        try:
            network = ipaddress.ip_network(str(data.get("cidr") or ""), strict=False)
        except ValueError:
            continue  # a subnet without a usable CIDR takes no part in the address space
        first, last = netmath.key_range(network)
        subnets[remote_id] = _Subnet({
            "subnet_id": remote_id, "network_id": data.get("network_id"), "project_id": project,
            "name": (name or "")[:255] or None, "cidr": str(network), "ip_version": network.version,
            "first_key": first, "last_key": last, "gateway_ip": data.get("gateway_ip") or None}, network)
    return subnets


def _address(kind: str, source_id: str, ip_text: str | None, **fields: Any) -> dict[str, Any] | None:
    try:
        address = ipaddress.ip_address(str(ip_text or ""))
    except ValueError:
        return None
    return {"kind": kind, "source_id": source_id, "ip": str(address), "ip_version": address.version,
            "ip_key": netmath.key_of(address), **fields}


def derive(session: Session, site_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The address rows and subnet rows the site's inventory implies (not stored)."""
    rows = _load(session, site_id)
    subnets = _subnets(rows["subnets"])
    servers = {rid: name for rid, _, name, _ in rows["servers"]}
    routers = {rid: (name, project) for rid, project, name, _ in rows["routers"]}
    ports = {rid: (project, data) for rid, project, _, data in rows["ports"]}
    items: list[dict[str, Any]] = []
    for port_id, (project, data) in ports.items():
        owner = str(data.get("device_owner") or "")
        if owner == FLOATING_OWNER:
            continue
        device = str(data.get("device_id") or "") or None
        kind, device_name = ("gateway" if owner == GATEWAY_OWNER else "fixed"), None
        if device in routers:
            device_name, router_project = routers[device]
            if kind == "gateway":
                project = router_project or project
        elif device is not None:
            device_name = servers.get(device)
        mac = data.get("mac_address")
        for fixed in data.get("fixed_ips") or []:
            subnet = subnets.get(str(fixed.get("subnet_id") or ""))
            row = _address(kind, port_id, fixed.get("ip_address"), project_id=project or None,
                           mac=str(mac).lower() if mac else None, network_id=data.get("network_id"),
                           subnet_id=fixed.get("subnet_id"), subnet_cidr=subnet.row["cidr"] if subnet else None,
                           port_id=port_id, device_id=device, device_owner=owner or None, device_name=device_name)
            if row is not None:
                items.append(row)
    for fip_id, project, _, data in rows["floating_ips"]:
        port = ports.get(str(data.get("port_id") or ""))
        device = str((port[1] if port else {}).get("device_id") or "") or None
        row = _address("floating", fip_id, data.get("floating_ip_address"), project_id=project, mac=None,
                       network_id=data.get("network_id"), subnet_id=None, subnet_cidr=None,
                       port_id=data.get("port_id"), device_id=device, device_owner=None,
                       device_name=servers.get(device or "") or (routers.get(device or "") or (None,))[0])
        if row is None:
            continue
        address = ipaddress.ip_address(row["ip"])
        for subnet in subnets.values():
            if subnet.row["network_id"] == row["network_id"] and address in subnet.network:
                row.update(subnet_id=subnet.row["subnet_id"], subnet_cidr=subnet.row["cidr"])
                break
        items.append(row)
    return items, [s.row for s in subnets.values()]


def derived(session: Session, *, site_id: str) -> bool:
    """Whether the site's addresses were ever derived (or it has nothing to derive them from)."""
    if session.scalar(select(AddressSubnet.site_id).where(AddressSubnet.site_id == site_id).limit(1)) is not None:
        return True
    return session.scalar(select(InventoryItem.id).where(
        InventoryItem.site_id == site_id, InventoryItem.kind.in_(SOURCES)).limit(1)) is None


def refresh_site(session: Session, *, site_id: str, now: datetime) -> BuildCounts:
    """Bring the site's address and subnet rows in line with its inventory (the caller's transaction)."""
    items, subnets = derive(session, site_id)
    counts = BuildCounts()
    stored_items = {tuple(r[1:]): r[0] for r in session.execute(
        select(AddressItem.id, *(getattr(AddressItem, f) for f in ITEM_FIELDS)).where(AddressItem.site_id == site_id))}
    wanted_items = {tuple(row[f] for f in ITEM_FIELDS): row for row in items}
    doomed = [row_id for key, row_id in stored_items.items() if key not in wanted_items]
    fresh = [{"site_id": site_id, **row, "changed_at": now} for key, row in wanted_items.items()
             if key not in stored_items]
    for start in range(0, len(doomed), CHUNK):
        session.execute(delete(AddressItem).where(AddressItem.id.in_(doomed[start:start + CHUNK])))
    for start in range(0, len(fresh), CHUNK):
        session.execute(insert(AddressItem), fresh[start:start + CHUNK])
    stored_subnets = {tuple(r) for r in session.execute(
        select(*(getattr(AddressSubnet, f) for f in SUBNET_FIELDS)).where(AddressSubnet.site_id == site_id))}
    wanted_subnets = {tuple(row[f] for f in SUBNET_FIELDS) for row in subnets}
    gone = [key[0] for key in stored_subnets - wanted_subnets]
    new = [{"site_id": site_id, **dict(zip(SUBNET_FIELDS, key, strict=True))}
           for key in wanted_subnets - stored_subnets]
    for start in range(0, len(gone), CHUNK):
        session.execute(delete(AddressSubnet).where(AddressSubnet.site_id == site_id,
                                                    AddressSubnet.subnet_id.in_(gone[start:start + CHUNK])))
    for start in range(0, len(new), CHUNK):
        session.execute(insert(AddressSubnet), new[start:start + CHUNK])
    counts.written = len(doomed) + len(fresh) + len(gone) + len(new)
    counts.unchanged = len(wanted_items) - len(fresh)
    return counts
