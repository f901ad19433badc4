"""The compute (Nova) call the probe kind makes: read the API version (keypairs: ``syncapi``).

Every function takes a session or connection from :class:`SitePool` and raises only
:class:`~skyfleet.errors.SiteError` (temporary or permanent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keystoneauth1 import session as ks_session

from skyfleet.drivers.openstack.errors import site_call
from skyfleet.errors import PermanentSiteError


@dataclass(frozen=True)
class ComputeVersion:
    endpoint: str
    version: str | None
    max_microversion: str | None


def _text(value: Any) -> str | None:
    if not value:
        return None
    return ".".join(str(p) for p in value) if isinstance(value, tuple) else str(value)


def compute_version(session: ks_session.Session, *, interface: str, region: str | None) -> ComputeVersion:
    """One read-only call: the compute endpoint's version document (authenticating first if needed)."""
    with site_call():
        data = session.get_endpoint_data(service_type="compute", interface=interface, region_name=region,
                                         discover_versions=True)
    if data is None or not data.url:
        raise PermanentSiteError("the site has no compute endpoint")
    return ComputeVersion(endpoint=data.url, version=_text(data.api_version),
                          max_microversion=_text(data.max_microversion))
