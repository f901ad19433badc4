"""Probe a site: authenticate, read the catalog, one cheap call per service, availability zones.

Uses keystoneauth directly (not a full openstacksdk Connection): a probe runs for every site every
audit interval, and a bare session costs a fraction of the CPU of a Connection.
"""

from __future__ import annotations

import time
from typing import Any

from keystoneauth1 import discover
from keystoneauth1 import exceptions as ks_exc

from skyfleet.drivers.base import SERVICE_TYPES, ProbeResult, ServiceProbe
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.session import make_session


def _version(value: Any) -> str | None:
    if not value:
        return None
    if isinstance(value, tuple):
        return ".".join(str(part) for part in value)
    return str(value)


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a failed call: a status code and an exception class, never
    the remote's own text (a site, or whatever its URL points at, chooses that text and it is shown)."""
    name = type(exc).__name__
    if isinstance(exc, ks_exc.Unauthorized):
        return "authentication failed (401 Unauthorized)"
    if isinstance(exc, ks_exc.ConnectTimeout | ks_exc.ConnectFailure):
        return f"cannot connect: {name}"
    if isinstance(exc, ks_exc.RequestTimeout):
        return "request timed out"
    if isinstance(exc, ks_exc.HttpError):
        return f"HTTP {exc.http_status} ({name})"
    if isinstance(exc, ks_exc.EndpointNotFound):
        return f"endpoint not found ({name})"
    return name


def _discovery_url(url: str, project_id: str | None) -> str:
    """The URL that answers version discovery: Cinder's catalog URL ends with the project id,
    which answers 404 to a GET, so the project part is dropped."""
    trimmed = url.rstrip("/")
    if project_id and trimmed.endswith("/" + project_id):
        return trimmed[: -len(project_id) - 1] + "/"
    return url


def _chosen_version(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest CURRENT version (else the newest listed) of a discovery document."""
    if not versions:
        return None
    current = [v for v in versions if str(v.get("status", "")).upper() == "CURRENT"] or versions
    return max(current, key=lambda v: v["version"])


def _probe_service(session: Any, kind: str, aliases: tuple[str, ...], interface: str,
                   region: str | None, catalog: Any, project_id: str | None) -> ServiceProbe | None:
    for alias in aliases:
        urls = catalog.get_urls(service_type=alias, interface=interface, region_name=region)
        if urls:
            break
    else:
        return None
    started = time.monotonic()
    try:
        # One GET of the version document, through keystoneauth's parser. Unlike
        # get_endpoint_data, Discover raises when the service answers an error.
        chosen = _chosen_version(discover.Discover(session, _discovery_url(urls[0], project_id)).version_data())
    except Exception as exc:  # any failure of one service makes the site degraded, not offline
        return ServiceProbe(type=kind, endpoint=urls[0], ok=False, error=describe_error(exc),
                            latency_ms=round((time.monotonic() - started) * 1000, 2))
    latency = round((time.monotonic() - started) * 1000, 2)
    if chosen is None:
        return ServiceProbe(type=kind, endpoint=urls[0], ok=False, error="empty version document",
                            latency_ms=latency)
    return ServiceProbe(
        type=kind, endpoint=urls[0], ok=True, version=_version(chosen.get("version")),
        min_microversion=_version(chosen.get("min_microversion")),
        max_microversion=_version(chosen.get("max_microversion")), latency_ms=latency,
    )


def _availability_zones(session: Any, interface: str, region: str | None) -> list[str]:
    response = session.get(
        "/os-availability-zone",
        endpoint_filter={"service_type": "compute", "interface": interface, "region_name": region},
        raise_exc=True,
    )
    zones = response.json().get("availabilityZoneInfo", [])
    return sorted(z["zoneName"] for z in zones if z.get("zoneState", {}).get("available", True))


def probe_site(auth: dict[str, Any], *, timeout: float, share: SitePool | None = None) -> ProbeResult:
    """Probe one site; never raises for a site-side failure. ``share``: the pool that gets the token the
    probe logged in with, for the process's other calls to the site."""
    interface = auth.get("interface", "public")
    region = auth.get("region_name") or None
    started = time.monotonic()
    try:
        # Building the session is inside: auth that keystoneauth cannot use is this site's error, not a crash
        # after the site was stored.
        session = make_session(auth, timeout=timeout)
        access = session.auth.get_access(session)
    except Exception as exc:
        return ProbeResult(reachable=False, error=describe_error(exc),
                           latency_ms=round((time.monotonic() - started) * 1000, 2))
    auth_latency = round((time.monotonic() - started) * 1000, 2)
    if share is not None:
        share.share(auth, timeout=timeout, fresh=session)
    catalog = access.service_catalog
    services: list[ServiceProbe] = []
    for kind, aliases in SERVICE_TYPES.items():
        probe = _probe_service(session, kind, aliases, interface, region, catalog, access.project_id)
        if probe is not None:
            services.append(probe)
    zones: list[str] = []
    errors = [f"{s.type}: {s.error}" for s in services if not s.ok]
    if any(s.type == "compute" and s.ok for s in services):
        try:
            zones = _availability_zones(session, interface, region)
        except Exception as exc:
            errors.append(f"availability zones: {describe_error(exc)}")
    if not services:
        errors.append(f"no known service in the catalog for region {region or '(any)'}")
    return ProbeResult(
        reachable=True, services=services, availability_zones=zones, region_name=region,
        latency_ms=auth_latency, error="; ".join(errors) or None,
    )
