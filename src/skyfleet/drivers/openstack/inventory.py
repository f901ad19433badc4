"""Read a site's tenant resources for the global inventory, as plain records.

Why raw JSON (keystoneauth's token and the endpoints of the openstacksdk proxies, the requests sent on
the shared aiohttp loop of ``site_http``) rather than openstacksdk resource objects: an audit of 10,000
sites reads millions of objects, and building an openstacksdk ``Resource`` for each costs far more CPU
than the HTTP call, as does each call through keystoneauth and requests. Each kind is one normaliser from the
service's JSON to a :class:`Record` (the fields the global view filters on, plus a small ``data``
document); every call counts in :class:`Reader.calls` so the refresh can prove what it cost.

Incremental reads: Nova servers with ``changes-since`` (deleted servers come back as DELETED);
Cinder volumes with ``updated_at=gte:`` at microversion 3.60 plus an id-only listing that reveals
deletions. Cinder knows no ``changes-since``: for an admin it answers an empty list, so the feed saw
nothing. A site older than 3.60 answers 406 and its volumes are listed in full instead.

Every listing follows the pages the service names (:mod:`.paging`); a short page is not the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from openstack import connection as sdk_connection

from skyfleet.drivers.base import CAPACITY_FIELDS, INVENTORY_KINDS, Record
from skyfleet.drivers.openstack import site_http
from skyfleet.drivers.openstack.errors import is_temporary_status, site_call
from skyfleet.drivers.openstack.paging import PAGE, next_params
from skyfleet.errors import PermanentSiteError, TemporarySiteError

#: Cinder's time-comparison filters (``updated_at=gte:``) are documented from this microversion.
VOLUME_FEED_MICROVERSION = "3.60"
Json = dict[str, Any]


def server_record(item: Json) -> Record:
    """A Nova server (a ``/servers/detail`` item or ``GET /servers/{id}``'s body) as the global view stores it."""
    addresses = {net: [a.get("addr") for a in entries] for net, entries in (item.get("addresses") or {}).items()}
    flavor = item.get("flavor") or {}
    image = item.get("image") or {}
    return Record(
        kind="servers", remote_id=item["id"], project_id=item.get("tenant_id"), name=item.get("name"),
        status=item.get("status"), ips=tuple(ip for ips in addresses.values() for ip in ips if ip),
        updated=item.get("updated"),
        data={"flavor": flavor.get("id") or flavor.get("original_name"),
              "image": image.get("id") if isinstance(image, dict) else None, "addresses": addresses,
              "availability_zone": item.get("OS-EXT-AZ:availability_zone"), "updated": item.get("updated")},
    )


def _volume(item: Json) -> Record:
    attachments = [{"server_id": a.get("server_id"), "device": a.get("device")}
                   for a in item.get("attachments") or []]
    return Record(
        kind="volumes", remote_id=item["id"], project_id=item.get("os-vol-tenant-attr:tenant_id"),
        name=item.get("name"), status=item.get("status"), updated=item.get("updated_at"),
        data={"size": item.get("size"), "attachments": attachments, "bootable": item.get("bootable"),
              "availability_zone": item.get("availability_zone"), "updated": item.get("updated_at")},
    )


def _image(item: Json) -> Record:
    return Record(kind="images", remote_id=item["id"], project_id=item.get("owner"), name=item.get("name"),
                  status=item.get("status"),
                  data={"visibility": item.get("visibility"), "size": item.get("size"),
                        "disk_format": item.get("disk_format"), "updated": item.get("updated_at")})


def _network(item: Json) -> Record:
    return Record(kind="networks", remote_id=item["id"], project_id=item.get("project_id") or item.get("tenant_id"),
                  name=item.get("name"), status=item.get("status"),
                  data={"shared": item.get("shared"), "external": item.get("router:external"),
                        "subnets": item.get("subnets"), "updated": item.get("updated_at")})


def _subnet(item: Json) -> Record:
    return Record(kind="subnets", remote_id=item["id"], project_id=item.get("project_id") or item.get("tenant_id"),
                  name=item.get("name"), status=None,
                  data={"cidr": item.get("cidr"), "ip_version": item.get("ip_version"),
                        "network_id": item.get("network_id"), "gateway_ip": item.get("gateway_ip"),
                        "updated": item.get("updated_at")})


def _port(item: Json) -> Record:
    fixed = [{"ip_address": f.get("ip_address"), "subnet_id": f.get("subnet_id")} for f in item.get("fixed_ips") or []]
    return Record(kind="ports", remote_id=item["id"], project_id=item.get("project_id") or item.get("tenant_id"),
                  name=item.get("name"), status=item.get("status"),
                  ips=tuple(f["ip_address"] for f in fixed if f["ip_address"]),
                  data={"mac_address": item.get("mac_address"), "fixed_ips": fixed,
                        "device_id": item.get("device_id"), "device_owner": item.get("device_owner"),
                        "network_id": item.get("network_id"), "updated": item.get("updated_at")})


def _router(item: Json) -> Record:
    gateway = item.get("external_gateway_info") or {}
    return Record(kind="routers", remote_id=item["id"], project_id=item.get("project_id") or item.get("tenant_id"),
                  name=item.get("name"), status=item.get("status"),
                  data={"external_network_id": gateway.get("network_id"), "updated": item.get("updated_at")})


def _floating_ip(item: Json) -> Record:
    ips = tuple(ip for ip in (item.get("floating_ip_address"), item.get("fixed_ip_address")) if ip)
    return Record(kind="floating_ips", remote_id=item["id"],
                  project_id=item.get("project_id") or item.get("tenant_id"),
                  name=item.get("floating_ip_address"), status=item.get("status"), ips=ips,
                  data={"floating_ip_address": item.get("floating_ip_address"),
                        "fixed_ip_address": item.get("fixed_ip_address"), "port_id": item.get("port_id"),
                        "network_id": item.get("floating_network_id"), "updated": item.get("updated_at")})


def _security_group(item: Json) -> Record:
    return Record(kind="security_groups", remote_id=item["id"],
                  project_id=item.get("project_id") or item.get("tenant_id"), name=item.get("name"), status=None,
                  data={"rules": len(item.get("security_group_rules") or []), "updated": item.get("updated_at")})


def _keypair(item: Json) -> Record:
    kp = item.get("keypair", item)
    return Record(kind="keypairs", remote_id=kp["name"], project_id=None, name=kp["name"], status=None,
                  data={"fingerprint": kp.get("fingerprint"), "type": kp.get("type")})


def _flavor(item: Json) -> Record:
    return Record(kind="flavors", remote_id=str(item["id"]), project_id=None, name=item.get("name"), status=None,
                  data={"vcpus": item.get("vcpus"), "ram": item.get("ram"), "disk": item.get("disk"),
                        "is_public": item.get("os-flavor-access:is_public")})


def _hypervisor(item: Json) -> Record:
    return Record(kind="hypervisors", remote_id=str(item["id"]), project_id=None,
                  name=item.get("hypervisor_hostname"), status=item.get("state"),
                  data={k: int(item.get(k) or 0) for k in CAPACITY_FIELDS})


def _zone(item: Json) -> Record:
    name = item.get("zoneName") or "?"
    available = (item.get("zoneState") or {}).get("available")
    return Record(kind="availability_zones", remote_id=name, project_id=None, name=name,
                  status="available" if available else "unavailable", data={})


@dataclass(frozen=True)
class Source:
    service: str
    path: str
    key: str
    normalise: Callable[[Json], Record]
    paged: bool = True
    params: Json = field(default_factory=dict)


SOURCES: dict[str, Source] = {
    "servers": Source("compute", "/servers/detail", "servers", server_record, params={"all_tenants": "1"}),
    "volumes": Source("block_storage", "/volumes/detail", "volumes", _volume, params={"all_tenants": "1"}),
    "images": Source("image", "/images", "images", _image),
    "networks": Source("network", "/networks", "networks", _network),
    "subnets": Source("network", "/subnets", "subnets", _subnet),
    "ports": Source("network", "/ports", "ports", _port),
    "routers": Source("network", "/routers", "routers", _router),
    "floating_ips": Source("network", "/floatingips", "floatingips", _floating_ip),
    "security_groups": Source("network", "/security-groups", "security_groups", _security_group),
    "keypairs": Source("compute", "/os-keypairs", "keypairs", _keypair, paged=False),
    "flavors": Source("compute", "/flavors/detail", "flavors", _flavor, params={"is_public": "None"}),
    "hypervisors": Source("compute", "/os-hypervisors/detail", "hypervisors", _hypervisor, paged=False),
    "availability_zones": Source("compute", "/os-availability-zone", "availabilityZoneInfo", _zone, paged=False),
}
KINDS: tuple[str, ...] = tuple(SOURCES)
assert KINDS == INVENTORY_KINDS, "every inventory kind the interface names has its source here"


class Reader:
    """Reads one site through one openstacksdk connection, counting its calls."""

    def __init__(self, conn: sdk_connection.Connection, *, page: int = PAGE) -> None:
        self.conn = conn
        self.page = page
        self.calls = 0

    def _get(self, service: str, path: str, params: Json, microversion: str | None = None) -> Json:
        """One listing page. Sent on the shared aiohttp loop (``site_http``: keystoneauth's token and
        endpoint, a fraction of its CPU per call: a 10,000-site refresh is thousands of calls a second),
        or through keystoneauth when the session holds a client certificate."""
        self.calls += 1
        if site_http.supported(self.conn):
            status, raw = site_http.request(self.conn, service, "GET", path, params=params,
                                            microversion=microversion)
        else:
            adapter = getattr(self.conn, service)
            with site_call():
                response = adapter.get(path, params=params, microversion=microversion, raise_exc=False)
            status, raw = response.status_code, response.content
        if status >= 400:
            text = raw.decode("utf-8", "replace")[:500]
            error = TemporarySiteError if is_temporary_status(status, text) else PermanentSiteError
            raise error(f"HTTP {status} on {path}: {text}", status=status)
        try:
            body: Json = json.loads(raw)
        except ValueError as exc:
            raise TemporarySiteError(f"HTTP {status} on {path}: not a JSON document") from exc
        return body

    def _items(self, source: Source, extra: Json | None = None, *,
               microversion: str | None = None) -> Iterator[Json]:
        params: Json | None = {**source.params, **(extra or {})}
        if source.paged:
            params = {**(params or {}), "limit": self.page}
        while params is not None:
            body = self._get(source.service, source.path, params, microversion)
            yield from body.get(source.key) or []
            params = next_params(body, source.key, params)

    def full(self, kind: str) -> list[Record]:
        """Every resource of ``kind`` on the site."""
        source = SOURCES[kind]
        return [source.normalise(item) for item in self._items(source)]

    def changed_servers(self, since: str) -> list[Record]:
        """Servers changed at or after ``since`` (site time), deleted ones with status DELETED."""
        return [server_record(item) for item in self._items(SOURCES["servers"], {"changes-since": since})]

    def changed_volumes(self, since: str) -> tuple[list[Record], set[str]]:
        """Volumes changed at or after ``since`` (site time), and the ids of every volume (to detect
        deletions). A site older than microversion 3.60 (406) gets every volume listed instead."""
        try:
            changed = [_volume(item) for item in self._items(SOURCES["volumes"], {"updated_at": f"gte:{since}"},
                                                             microversion=VOLUME_FEED_MICROVERSION)]
        except PermanentSiteError as exc:
            if exc.status != 406:
                raise
            every = self.full("volumes")
            return every, {r.remote_id for r in every}
        ids_source = Source("block_storage", "/volumes", "volumes", _volume, params={"all_tenants": "1"})
        return changed, {str(item["id"]) for item in self._items(ids_source)}


def read_live(conn: sdk_connection.Connection, kind: str) -> list[Record]:
    """One kind read straight from the site (``?live=true``)."""
    return Reader(conn).full(kind)
