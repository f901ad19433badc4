"""The Neutron calls of a network declared once: a network, its subnet, a router with an interface on
the subnet and an optional external gateway, all written in a given project by the site's admin
credential (what a tenant's declared network needs).

Why it exists: the ``sync.network`` kind must find again what it made after a crash, so every object
carries Skyfleet's mark in its ``description`` (``skyfleet:<declared network id>``; the description
is a standard attribute on every Neutron release, tags are an extension). Look-ups match the mark,
never the name alone, so a user's own network of the same name is never touched. Plain REST through
:func:`skyfleet.drivers.openstack.syncapi._call`: only :class:`~skyfleet.errors.SiteError` leaves;
"absent" is None or False, never an exception.
"""

from __future__ import annotations

from typing import Any

from openstack import connection as sdk_connection

from skyfleet.drivers.openstack.syncapi import _call, _listing

Json = dict[str, Any]
ROUTER_INTERFACE = "network:router_interface"


def _marked(conn: sdk_connection.Connection, collection: str, params: Json, mark: str) -> Json | None:
    key = collection.replace("-", "_")
    found = [item for item in _listing(conn, "network", f"/{collection}", key, params)
             if item.get("description") == mark]
    found.sort(key=lambda item: str(item.get("created_at") or ""))
    return dict(found[0]) if found else None


# --- networks ------------------------------------------------------------------------------------

def find_network(conn: sdk_connection.Connection, *, project_id: str, mark: str) -> Json | None:
    """The network of ``project_id`` carrying ``mark`` (the oldest, should there be two)."""
    return _marked(conn, "networks", {"project_id": project_id}, mark)


def create_network(conn: sdk_connection.Connection, *, name: str, project_id: str, mark: str) -> Json:
    body = {"name": name, "project_id": project_id, "description": mark, "admin_state_up": True}
    return dict(_call(conn, "network", "POST", "/networks", body={"network": body})["network"])


def delete_network(conn: sdk_connection.Connection, network_id: str) -> bool:
    """Delete a network (Neutron deletes its subnets with it); False when it was gone already."""
    return _call(conn, "network", "DELETE", f"/networks/{network_id}", missing_ok=True) is not None


def network_ports(conn: sdk_connection.Connection, network_id: str) -> list[Json]:
    """Every port on the network, whoever's (id, device_owner, device_id, project_id)."""
    return [{k: port.get(k) for k in ("id", "device_owner", "device_id", "project_id")}
            for port in _listing(conn, "network", "/ports", "ports", {"network_id": network_id})]


def delete_port(conn: sdk_connection.Connection, port_id: str) -> bool:
    """Delete a port (a server's too: Nova detaches it); False when it was gone already."""
    return _call(conn, "network", "DELETE", f"/ports/{port_id}", missing_ok=True) is not None


def find_external_network(conn: sdk_connection.Connection, ref: str) -> str | None:
    """The id of the external network ``ref`` (an id or a name) in this site; None when absent."""
    for item in _listing(conn, "network", "/networks", "networks", {"router:external": "True"}):
        if ref in (item.get("id"), item.get("name")):
            return str(item["id"])
    return None


# --- subnets -------------------------------------------------------------------------------------

def find_subnet(conn: sdk_connection.Connection, *, network_id: str, mark: str) -> Json | None:
    return _marked(conn, "subnets", {"network_id": network_id}, mark)


def create_subnet(conn: sdk_connection.Connection, *, network_id: str, project_id: str, name: str, mark: str,
                  cidr: str, gateway: bool, enable_dhcp: bool, dns_nameservers: list[str]) -> Json:
    """A subnet of ``cidr``; ``gateway``: Neutron's default (the first address), else none."""
    version = 6 if ":" in cidr else 4
    body: Json = {"network_id": network_id, "project_id": project_id, "name": name, "description": mark,
                  "cidr": cidr, "ip_version": version, "enable_dhcp": enable_dhcp,
                  "dns_nameservers": list(dns_nameservers)}
    if not gateway:
        body["gateway_ip"] = None
    return dict(_call(conn, "network", "POST", "/subnets", body={"subnet": body})["subnet"])


def update_subnet(conn: sdk_connection.Connection, subnet_id: str, *, enable_dhcp: bool,
                  dns_nameservers: list[str]) -> Json:
    body = {"enable_dhcp": enable_dhcp, "dns_nameservers": list(dns_nameservers)}
    return dict(_call(conn, "network", "PUT", f"/subnets/{subnet_id}", body={"subnet": body})["subnet"])


def delete_subnet(conn: sdk_connection.Connection, subnet_id: str) -> bool:
    return _call(conn, "network", "DELETE", f"/subnets/{subnet_id}", missing_ok=True) is not None


# --- security groups -----------------------------------------------------------------------------

def find_security_group(conn: sdk_connection.Connection, *, project_id: str, mark: str) -> Json | None:
    """The security group of ``project_id`` carrying ``mark`` in its description, with its rules
    (made and changed through :mod:`skyfleet.drivers.openstack.syncapi`'s group and rule calls)."""
    return _marked(conn, "security-groups", {"project_id": project_id}, mark)


# --- routers -------------------------------------------------------------------------------------

def find_router(conn: sdk_connection.Connection, *, project_id: str, mark: str) -> Json | None:
    return _marked(conn, "routers", {"project_id": project_id}, mark)


def create_router(conn: sdk_connection.Connection, *, name: str, project_id: str, mark: str,
                  external_network_id: str | None) -> Json:
    body: Json = {"name": name, "project_id": project_id, "description": mark, "admin_state_up": True}
    if external_network_id:
        body["external_gateway_info"] = {"network_id": external_network_id}
    return dict(_call(conn, "network", "POST", "/routers", body={"router": body})["router"])


def set_router_gateway(conn: sdk_connection.Connection, router_id: str, external_network_id: str | None) -> Json:
    """Point the router's external gateway at ``external_network_id``, or clear it (None)."""
    info: Json = {"network_id": external_network_id} if external_network_id else {}
    return dict(_call(conn, "network", "PUT", f"/routers/{router_id}",
                      body={"router": {"external_gateway_info": info}})["router"])


def delete_router(conn: sdk_connection.Connection, router_id: str) -> bool:
    """Delete a router (its interfaces removed first by the caller); False when it was gone."""
    return _call(conn, "network", "DELETE", f"/routers/{router_id}", missing_ok=True) is not None


def router_subnets(conn: sdk_connection.Connection, router_id: str) -> set[str]:
    """The subnets the router has an interface on."""
    ports = _listing(conn, "network", "/ports", "ports", {"device_id": router_id, "device_owner": ROUTER_INTERFACE})
    return {str(ip["subnet_id"]) for port in ports for ip in port.get("fixed_ips") or []}


def add_router_interface(conn: sdk_connection.Connection, router_id: str, subnet_id: str) -> Json:
    """An interface of the router on the subnet (it takes the subnet's gateway address)."""
    return dict(_call(conn, "network", "PUT", f"/routers/{router_id}/add_router_interface",
                      body={"subnet_id": subnet_id}))


def remove_router_interface(conn: sdk_connection.Connection, router_id: str, subnet_id: str) -> bool:
    """Remove the router's interface on the subnet; False when there was none (or no router)."""
    return _call(conn, "network", "PUT", f"/routers/{router_id}/remove_router_interface",
                 body={"subnet_id": subnet_id}, missing_ok=True) is not None
