"""Quota calls to one site: find a project by name, read usage and limits, write limits.

Why it exists: global quota needs each site's usage and limits per project and must write per-site
limits. Usage comes from the quota-usage APIs (Nova ``os-quota-sets/{p}/detail``, Cinder
``os-quota-sets/{p}?usage=True``, Neutron ``quotas/{p}/details``). Raw keystoneauth calls, one per
service, so a project costs three reads. Every function raises only :class:`SiteError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from keystoneauth1 import session as ks_session

from skyfleet.drivers.openstack.errors import site_call

COMPUTE_KEYS = ("instances", "cores", "ram", "key_pairs", "server_groups", "metadata_items")
NETWORK_KEYS = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
VOLUME_KEYS = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes")
SERVICES: dict[str, tuple[str, ...]] = {"compute": COMPUTE_KEYS, "network": NETWORK_KEYS, "volume": VOLUME_KEYS}


@dataclass(frozen=True)
class Endpoint:
    """Where to call: catalog interface and region of the site."""

    interface: str = "public"
    region: str | None = None


@dataclass
class QuotaReading:
    usage: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)


def _filter(service_type: str, where: Endpoint) -> dict[str, Any]:
    return {"service_type": service_type, "interface": where.interface, "region_name": where.region}


def _identity_root(auth_url: str) -> str:
    root = auth_url.rstrip("/")
    return root if root.endswith("/v3") else root + "/v3"


def find_project(session: ks_session.Session, *, auth_url: str, name: str, domain_name: str) -> str | None:
    """The id of project ``name`` in domain ``domain_name`` of the site's Keystone, or None."""
    root = _identity_root(auth_url)
    with site_call():
        domains = session.get(f"{root}/domains?name={quote(domain_name)}").json().get("domains", [])
        if not domains:
            return None
        found = session.get(f"{root}/projects?name={quote(name)}&domain_id={quote(domains[0]['id'])}"
                            ).json().get("projects", [])
    return str(found[0]["id"]) if found else None


def _reading(body: Mapping[str, Any], keys: Iterable[str], used_key: str) -> QuotaReading:
    reading = QuotaReading()
    for key in keys:
        item = body.get(key)
        if isinstance(item, dict):
            reading.limits[key] = int(item.get("limit", -1))
            reading.usage[key] = int(item.get(used_key, 0)) + int(item.get("reserved", 0) or 0)
    return reading


def read_quota(session: ks_session.Session, *, project_id: str, service: str, where: Endpoint) -> QuotaReading:
    """Usage and limits of ``project_id`` for one service (one GET)."""
    pid = quote(project_id)
    with site_call():
        if service == "compute":
            body = session.get(f"/os-quota-sets/{pid}/detail", endpoint_filter=_filter("compute", where)).json()
            return _reading(body["quota_set"], COMPUTE_KEYS, "in_use")
        if service == "volume":
            body = session.get(f"/os-quota-sets/{pid}?usage=True",
                               endpoint_filter=_filter("block-storage", where)).json()
            return _reading(body["quota_set"], VOLUME_KEYS, "in_use")
        body = session.get(f"/v2.0/quotas/{pid}/details", endpoint_filter=_filter("network", where)).json()
        return _reading(body["quota"], NETWORK_KEYS, "used")


def read_limits(session: ks_session.Session, *, project_id: str, service: str, where: Endpoint) -> dict[str, int]:
    """The limits alone (what ``write_limits`` compares with)."""
    return read_quota(session, project_id=project_id, service=service, where=where).limits


def write_limits(session: ks_session.Session, *, project_id: str, service: str, limits: Mapping[str, int],
                 where: Endpoint) -> None:
    """Set ``limits`` (keys of ``service`` only) for ``project_id`` (one PUT)."""
    pid = quote(project_id)
    values = {k: int(v) for k, v in limits.items() if k in SERVICES[service]}
    if not values:
        return
    with site_call():
        if service == "compute":
            session.put(f"/os-quota-sets/{pid}", json={"quota_set": {**values, "force": True}},
                        endpoint_filter=_filter("compute", where))
        elif service == "volume":
            session.put(f"/os-quota-sets/{pid}", json={"quota_set": values},
                        endpoint_filter=_filter("block-storage", where))
        else:
            session.put(f"/v2.0/quotas/{pid}", json={"quota": values}, endpoint_filter=_filter("network", where))
