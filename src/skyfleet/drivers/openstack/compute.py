"""The compute (Nova) calls the reconcile kinds make: read the API version, read and create keypairs.

Every function takes a session or connection from :class:`SitePool` and raises only
:class:`~skyfleet.errors.SiteError` (temporary or permanent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keystoneauth1 import session as ks_session
from openstack import connection as sdk_connection
from openstack import exceptions as sdk_exc

from skyfleet.drivers.openstack.errors import site_call
from skyfleet.errors import PermanentSiteError


@dataclass(frozen=True)
class ComputeVersion:
    endpoint: str
    version: str | None
    max_microversion: str | None


@dataclass(frozen=True)
class Keypair:
    name: str
    fingerprint: str | None
    public_key: str | None


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


def _keypair(found: Any) -> Keypair:
    return Keypair(name=found.name, fingerprint=found.fingerprint, public_key=found.public_key)


def get_keypair(conn: sdk_connection.Connection, name: str) -> Keypair | None:
    """The keypair ``name`` of the connection's user, or None."""
    with site_call():
        try:
            return _keypair(conn.compute.get_keypair(name))
        except sdk_exc.NotFoundException:
            return None


def create_keypair(conn: sdk_connection.Connection, *, name: str, public_key: str) -> Keypair:
    """Create keypair ``name`` from ``public_key`` (one POST)."""
    with site_call():
        return _keypair(conn.compute.create_keypair(name=name, public_key=public_key))
