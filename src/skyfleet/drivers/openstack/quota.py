"""Quota vocabulary of one site: the resources per service, a project found by name, and the usage
and limits read from a quota-usage document.

Why it exists: global quota needs each site's usage and limits per project. Usage comes from the
quota-usage APIs (Nova ``os-quota-sets/{p}/detail``, Cinder ``os-quota-sets/{p}?usage=True``,
Neutron ``quotas/{p}/details``); the calls themselves go out in batches (``quota_batch``). Every
function raises only :class:`SiteError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session

from skyfleet.drivers.openstack.errors import site_call
from skyfleet.errors import PermanentSiteError

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


@dataclass(frozen=True)
class KnownProject:
    """A project the site's Keystone knows by id, with its name and its domain's name."""

    project_id: str
    name: str
    domain_name: str


def project_by_id(session: ks_session.Session, *, auth_url: str, project_id: str) -> KnownProject | None:
    """The project with this id in the site's Keystone (regions sharing a Keystone share ids), or None."""
    root = _identity_root(auth_url)
    with site_call():
        try:
            project = session.get(f"{root}/projects/{quote(project_id)}").json().get("project") or {}
        except ks_exc.NotFound:
            return None
        domain_id = str(project.get("domain_id") or "default")
        try:
            domain = session.get(f"{root}/domains/{quote(domain_id)}").json().get("domain") or {}
        except ks_exc.NotFound:
            domain = {}
    if not project.get("id"):
        return None
    return KnownProject(project_id=str(project["id"]), name=str(project.get("name") or ""),
                        domain_name=str(domain.get("name") or "Default"))


def _reading(body: Mapping[str, Any], keys: Iterable[str], used_key: str) -> QuotaReading:
    reading = QuotaReading()
    for key in keys:
        item = body.get(key)
        if isinstance(item, dict):
            reading.limits[key] = int(item.get("limit", -1))
            reading.usage[key] = int(item.get(used_key, 0)) + int(item.get("reserved", 0) or 0)
    return reading


def reading_of(service: str, body: Any) -> QuotaReading:
    """Usage and limits from one service's quota-usage document (Nova detail, Cinder usage=True, Neutron
    details)."""
    try:
        if service == "network":
            return _reading(body["quota"], NETWORK_KEYS, "used")
        return _reading(body["quota_set"], SERVICES[service], "in_use")
    except (KeyError, TypeError) as exc:
        raise PermanentSiteError(f"the {service} quota document has no {exc}") from exc
