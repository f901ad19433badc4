"""Probe a site: authenticate, read the catalog, one cheap call per service, availability zones.

Uses keystoneauth directly (not a full openstacksdk Connection): a bare session costs a fraction of
the CPU of a Connection. The health audit runs this full probe every Nth cycle (and whenever its cheap
call fails or answers differently); :func:`token_view` and :func:`zone_names` serve its cheap call.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

from keystoneauth1 import discover
from keystoneauth1 import exceptions as ks_exc

from skyfleet.drivers.base import SERVICE_TYPES, ProbeResult, ServiceProbe
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.session import make_session

UNAUTHORIZED = "authentication failed (401 Unauthorized)"


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
        return UNAUTHORIZED
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


def _catalog_urls(catalog: Any, interface: str, region: str | None) -> dict[str, list[str]]:
    """Catalog type -> endpoint URLs for ``interface`` and ``region``: the catalog read once per probe
    (each keystoneauth lookup copies the whole catalog)."""
    found = catalog.get_endpoints_data(interface=interface, region_name=region)
    return {str(kind): [e.url for e in endpoints if e.url] for kind, endpoints in found.items()}


def _probe_service(session: Any, kind: str, aliases: tuple[str, ...], catalog: dict[str, list[str]],
                   project_id: str | None) -> ServiceProbe | None:
    urls = next((catalog[alias] for alias in aliases if catalog.get(alias)), None)
    if not urls:
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


def zone_names(document: Any) -> list[str]:
    """The available zones of a compute ``os-availability-zone`` answer, sorted (what a probe stores)."""
    zones = document.get("availabilityZoneInfo", []) if isinstance(document, dict) else []
    return sorted(str(z["zoneName"]) for z in zones
                  if isinstance(z, dict) and "zoneName" in z and (z.get("zoneState") or {}).get("available", True))


def _availability_zones(session: Any, compute_url: str) -> list[str]:
    return zone_names(session.get(compute_url.rstrip("/") + "/os-availability-zone", raise_exc=True).json())


@dataclass(frozen=True)
class TokenView:
    """The token a session holds (no login made to get it), when it expires, and the URL of the audit's
    cheap call in its catalog (the compute availability zones; None without a compute endpoint)."""

    token: str
    expires_at: float  # seconds since the epoch; inf when Keystone gave no expiry
    zones_url: str | None


def token_view(session: Any, *, interface: str, region: str | None) -> TokenView | None:
    """What ``session`` holds now, or None when it holds no token. Never logs in, never calls the site."""
    ref = getattr(session.auth, "auth_ref", None)
    token = getattr(ref, "auth_token", None) if ref is not None else None
    if ref is None or not token:
        return None
    try:
        url: str | None = ref.service_catalog.url_for(service_type="compute", interface=interface,
                                                      region_name=region)
    except ks_exc.EndpointNotFound:
        url = None
    expires = ref.expires.timestamp() if ref.expires is not None else math.inf
    return TokenView(token=str(token), expires_at=expires,
                     zones_url=url.rstrip("/") + "/os-availability-zone" if url else None)


def _probe(session: Any, interface: str, region: str | None, started: float) -> tuple[ProbeResult, bool]:
    """The probe with ``session``; and whether a call was refused with 401 (a token the site dropped)."""
    try:
        access = session.auth.get_access(session)  # logs in only when the session holds no fresh token
    except Exception as exc:
        return ProbeResult(reachable=False, error=describe_error(exc),
                           latency_ms=round((time.monotonic() - started) * 1000, 2)), False
    auth_latency = round((time.monotonic() - started) * 1000, 2)
    catalog = _catalog_urls(access.service_catalog, interface, region)
    services: list[ServiceProbe] = []
    for kind, aliases in SERVICE_TYPES.items():
        probe = _probe_service(session, kind, aliases, catalog, access.project_id)
        if probe is not None:
            services.append(probe)
    zones: list[str] = []
    zone_error, zone_refused = None, False
    compute = next((s for s in services if s.type == "compute" and s.ok), None)
    if compute is not None and compute.endpoint:
        try:
            zones = _availability_zones(session, compute.endpoint)
        except Exception as exc:
            zone_error, zone_refused = describe_error(exc), isinstance(exc, ks_exc.Unauthorized)
    return _reached(services, zones, region=region, latency_ms=auth_latency, zone_error=zone_error,
                   zone_refused=zone_refused)


def _reached(services: list[ServiceProbe], zones: list[str], *, region: str | None, latency_ms: float,
            zone_error: str | None, zone_refused: bool) -> tuple[ProbeResult, bool]:
    """The result of a probe that logged in (both probes' last step): each failed service and the zones'
    failure in its error; and whether a call was refused with 401 (a token the site dropped)."""
    errors = [f"{s.type}: {s.error}" for s in services if not s.ok]
    if zone_error is not None:
        errors.append(f"availability zones: {zone_error}")
    if not services:
        errors.append(f"no known service in the catalog for region {region or '(any)'}")
    refused = zone_refused or any(s.error == UNAUTHORIZED for s in services)
    return ProbeResult(reachable=True, services=services, availability_zones=zones, region_name=region,
                       latency_ms=latency_ms, error="; ".join(errors) or None), refused


def probe_site(auth: dict[str, Any], *, timeout: float, share: SitePool | None = None,
               session: Any = None) -> ProbeResult:
    """Probe one site; never raises for a site-side failure. ``share``: the pool that gets the token the
    probe logged in with, for the process's other calls to the site. ``session``: probe with this
    keystoneauth session and the token it holds while that is fresh (no login); a call refused with 401,
    or a Keystone that does not answer, drops the token and the probe runs once more with a new login."""
    interface = auth.get("interface", "public")
    region = auth.get("region_name") or None
    started = time.monotonic()
    try:
        # Building the session is inside: auth that keystoneauth cannot use is this site's error, not a crash
        # after the site was stored.
        session = session if session is not None else make_session(auth, timeout=timeout)
    except Exception as exc:
        return ProbeResult(reachable=False, error=describe_error(exc),
                           latency_ms=round((time.monotonic() - started) * 1000, 2))
    held = getattr(session.auth, "auth_ref", None) is not None
    result, refused = _probe(session, interface, region, started)
    keystone = next((s for s in result.services if s.type == "identity"), None)
    silent = not any(s.ok for s in result.services) if keystone is None else not keystone.ok
    if held and result.reachable and (refused or silent):
        # The site refused the token it gave, or its Keystone did not answer: log in again, once. Whether
        # that login works is what "reachable" means, as for a probe that had no token.
        session.invalidate()
        result, _ = _probe(session, interface, region, time.monotonic())
    elif held and keystone is not None:  # no login this time: Keystone's answer time stands for it
        result = dataclasses.replace(result, latency_ms=keystone.latency_ms)
    if share is not None and result.reachable:
        share.share(auth, timeout=timeout, fresh=session)
    return result
