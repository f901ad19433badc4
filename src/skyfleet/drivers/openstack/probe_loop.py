"""The health audit's full probe on its event loop: the same result as ``probe.probe_site``, without threads.

Why it exists: through keystoneauth and requests, each of the full probe's calls cost about 2.5 ms of
CPU on a thread of its own, and its login more; an audit cycle in which 1/N of 10,000 sites get the full
probe spent most of its time there. Here every call of the probe (the login when one is due, each
service's version document, the availability zones) is one request on the audit's aiohttp loop
(``audit_http``), and the services are asked at once (within the per-site bound).

keystoneauth stays the authority on what is sent and how it is read: the login body is the one its
plugin builds, the token it returns is handed to the keystoneauth session of the process's pool (so the
engine's next call on the site reuses it), version documents go through its parser, and HTTP failures
are named as its exceptions would name them (``probe.describe_error``). Only the transport differs, and
two of keystoneauth's costs on the way (profiled: about half of a login cycle's CPU here): the catalog is
read in place with the rules of its ``get_endpoints_data`` (which deep-copies the whole catalog at each
call), and a version document's parse is remembered by the fields it reads (every site of one release
answers the same document but for its URLs, whose parse is the costly part).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

from keystoneauth1 import access, discover
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.access.service_catalog import ServiceCatalogV3

from skyfleet.drivers.base import SERVICE_TYPES, ProbeResult, ServiceProbe
from skyfleet.drivers.openstack.audit_http import Answer, AuditHttp, Call
from skyfleet.drivers.openstack.probe import (
    UNAUTHORIZED,
    TokenView,
    _catalog_urls,
    _chosen_version,
    _discovery_url,
    _reached,
    _version,
    describe_error,
    zone_names,
)


class _Seen:
    """An answer as keystoneauth's parsers read a ``requests`` response: its status, no headers, no text
    (so that no remote text reaches an error), and the JSON body already read."""

    def __init__(self, status: int, body: Any = None) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.text = ""
        self._body = body

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("no JSON document")
        return self._body


class _Replay:
    """A stand-in session for keystoneauth's discovery parser: hands it the document already fetched."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def get(self, url: str, **_: Any) -> _Seen:
        return _Seen(200, self._body)


class _Posted(Exception):
    def __init__(self, url: str, body: Any) -> None:
        super().__init__("login request captured")
        self.url, self.body = url, body


class _Capture:
    """A stand-in session that captures the login request keystoneauth's plugin would send."""

    def post(self, url: str, json: Any = None, **_: Any) -> None:
        raise _Posted(url, json)


def _failure(answer: Answer, *, unparsable: str) -> str | None:
    """What keystoneauth (through requests) would have raised for ``answer``, described as
    ``describe_error`` describes it; None when the answer is a usable 2xx JSON document."""
    if answer.status is None:
        error = answer.error or "no answer"
        if error == "request timed out":
            return "cannot connect: ConnectTimeout"  # keystoneauth names every requests timeout so
        if "Certificate" in error or "SSL" in error:
            return "SSLError"
        if error.startswith("cannot connect"):
            return "cannot connect: ConnectFailure"
        return error
    if answer.status >= 400:
        return describe_error(ks_exc.from_response(_Seen(answer.status), "GET", ""))
    if answer.error is not None or answer.body is None:
        return unparsable
    return None


def _catalog(ref: Any, interface: str, region: str | None) -> dict[str, list[str]]:
    """``probe._catalog_urls`` of a v3 token without its copy of the catalog: keystoneauth's own rules
    (services with a type; the interface normalised as it normalises it; the region by ``region_id``, else
    ``region``; endpoints with a URL), applied to the raw catalog, which is only read."""
    catalog = ref.service_catalog
    if type(catalog) is not ServiceCatalogV3:
        return _catalog_urls(catalog, interface, region)
    wanted = catalog.normalize_interface(interface) if interface else None
    found: dict[str, list[str]] = {}
    for service in catalog.catalog or []:
        if "type" not in service:
            continue
        urls = found.setdefault(str(service["type"]), [])
        for endpoint in service.get("endpoints", []):
            if wanted and endpoint.get("interface") != wanted:
                continue
            if region and region != (endpoint.get("region_id") or endpoint.get("region")):
                continue
            if endpoint.get("url"):
                urls.append(endpoint["url"])
    return found


_Chosen = tuple[Any, Any, Any] | None  # (version, min_microversion, max_microversion) of the chosen version
_PARSED: dict[tuple[Any, ...], _Chosen] = {}
_PARSED_MOST = 4096


def _fingerprint(versions: Any) -> tuple[Any, ...] | None:
    """What keystoneauth's ``version_data`` reads of a version list, its links' targets left out (only
    whether a version has a usable ``self`` link counts); None when the list is not of the usual shape."""
    try:
        key = tuple((v.get("id"), v.get("min_version"), v.get("max_version"), v.get("version"),
                      v.get("next_min_version"), v.get("status"),
                      "links" in v and any(isinstance(link, dict) and isinstance(link.get("href"), str)
                                           and str(link.get("rel", "")).lower() == "self" for link in v["links"]))
                     for v in versions)
        hash(key)  # a value of a list or dict cannot be a key: no memory of that document
        return key
    except (AttributeError, TypeError):
        return None


def _chosen(body: Any, url: str) -> _Chosen:
    """The chosen version of a discovery document, parsed by keystoneauth (raises as it raises)."""
    replay = _Replay(body)
    key = _fingerprint(discover.get_version_data(replay, url))
    if key is not None and key in _PARSED:
        return _PARSED[key]
    chosen = _chosen_version(discover.Discover(replay, url).version_data())
    found = None if chosen is None else (chosen.get("version"), chosen.get("min_microversion"),
                                         chosen.get("max_microversion"))
    if key is not None:
        if len(_PARSED) >= _PARSED_MOST:
            _PARSED.clear()
        _PARSED[key] = found
    return found


def _verify(session: Any) -> bool | str:
    return session.verify if isinstance(session.verify, bool | str) else True


async def _login(http: AuditHttp, site: str, session: Any, timeout: float) -> tuple[Any, str | None]:
    """Log in as ``session``'s plugin would, on the loop: (the token, None) or (None, the error). The token
    becomes the plugin's own, as if keystoneauth had fetched it."""
    plugin = session.auth
    try:
        plugin.get_auth_ref(_Capture())
        return None, "AuthorizationFailure"  # the plugin sent nothing: not a plugin this probe knows
    except _Posted as posted:
        url, body = posted.url, posted.body
    except Exception as exc:  # auth keystoneauth refuses to build (scoped twice ...): the site's error
        return None, describe_error(exc)
    answer = await http.fetch(Call(site=site, url=url, token="", verify=_verify(session), timeout=timeout,
                                   body=body))
    if answer.status == 401:
        return None, UNAUTHORIZED
    failed = _failure(answer, unparsable="InvalidResponse")
    if failed is not None:
        return None, failed
    if not isinstance(answer.body, dict) or "token" not in answer.body or not answer.subject_token:
        return None, "InvalidResponse"
    ref = access.AccessInfoV3(auth_token=answer.subject_token, body=answer.body)
    plugin.auth_ref = ref  # what keystoneauth's get_access does with a token it fetched
    return ref, None


async def _token(http: AuditHttp, site: str, session: Any, timeout: float) -> tuple[Any, str | None]:
    """``session``'s token while it is fresh, else a login on the loop (as keystoneauth's ``get_access``
    decides): (the token, None) or (None, the error)."""
    plugin = session.auth
    ref = plugin.auth_ref
    if ref is None or (plugin.reauthenticate and ref.will_expire_soon(plugin.MIN_TOKEN_LIFE_SECONDS)):
        return await _login(http, site, session, timeout)
    return ref, None


async def login_on_loop(http: AuditHttp, site: str, session: Any, *, interface: str, region: str | None,
                        timeout: float) -> tuple[TokenView | None, str | None]:
    """The token ``session`` holds, after a login on the loop when it holds none fresh (the new token
    becomes the session's, as in ``probe_on_loop``), seen as ``probe.token_view`` sees it: its expiry and
    the URL of the compute availability zones, read in place from its catalog (no copy of it). Returns
    (the view, None), or (None, the error as ``probe_site`` names it) when the login fails."""
    ref, error = await _token(http, site, session, timeout)
    if error is not None:
        return None, error
    catalog = _catalog(ref, interface, region)
    urls = next((catalog[alias] for alias in SERVICE_TYPES["compute"] if catalog.get(alias)), None)
    expires = ref.expires.timestamp() if ref.expires is not None else math.inf
    return TokenView(token=str(ref.auth_token), expires_at=expires,
                     zones_url=urls[0].rstrip("/") + "/os-availability-zone" if urls else None), None


async def _service(http: AuditHttp, site: str, token: str, verify: bool | str, timeout: float, kind: str,
                   aliases: tuple[str, ...], catalog: dict[str, list[str]], project_id: str | None
                   ) -> ServiceProbe | None:
    urls = next((catalog[alias] for alias in aliases if catalog.get(alias)), None)
    if not urls:
        return None
    url = _discovery_url(urls[0], project_id)
    answer = await http.fetch(Call(site=site, url=url, token=token, verify=verify, timeout=timeout))
    latency = round(answer.seconds * 1000, 2)
    failed = _failure(answer, unparsable="DiscoveryFailure")
    chosen = None
    if failed is None:
        try:
            chosen = _chosen(answer.body, url)
        except Exception as exc:  # a document keystoneauth cannot read: this service's error
            failed = describe_error(exc)
    if failed is not None:
        return ServiceProbe(type=kind, endpoint=urls[0], ok=False, error=failed, latency_ms=latency)
    if chosen is None:
        return ServiceProbe(type=kind, endpoint=urls[0], ok=False, error="empty version document",
                            latency_ms=latency)
    return ServiceProbe(type=kind, endpoint=urls[0], ok=True, version=_version(chosen[0]),
                        min_microversion=_version(chosen[1]), max_microversion=_version(chosen[2]),
                        latency_ms=latency)


async def _probe(http: AuditHttp, site: str, session: Any, interface: str, region: str | None, timeout: float,
                 started: float) -> tuple[ProbeResult, bool]:
    """One probe with ``session``'s token (a login first when it has none fresh, as keystoneauth's
    ``get_access``); and whether a call was refused with 401."""
    ref, error = await _token(http, site, session, timeout)
    if error is not None:
        return ProbeResult(reachable=False, error=error,
                           latency_ms=round((time.monotonic() - started) * 1000, 2)), False
    auth_latency = round((time.monotonic() - started) * 1000, 2)
    catalog = _catalog(ref, interface, region)
    token, verify = str(ref.auth_token), _verify(session)
    found = await asyncio.gather(*(_service(http, site, token, verify, timeout, kind, aliases, catalog,
                                            ref.project_id) for kind, aliases in SERVICE_TYPES.items()))
    services = [probe for probe in found if probe is not None]
    zones: list[str] = []
    failed, refused = None, False
    compute = next((s for s in services if s.type == "compute" and s.ok), None)
    if compute is not None and compute.endpoint:
        answer = await http.fetch(Call(site=site, url=compute.endpoint.rstrip("/") + "/os-availability-zone",
                                       token=token, verify=verify, timeout=timeout))
        failed = _failure(answer, unparsable="JSONDecodeError")
        if failed is None:
            zones = zone_names(answer.body)
        else:
            refused = answer.status == 401
    return _reached(services, zones, region=region, latency_ms=auth_latency, zone_error=failed,
                   zone_refused=refused)


async def probe_on_loop(http: AuditHttp, site: str, auth: dict[str, Any], session: Any, *,
                        timeout: float) -> ProbeResult:
    """``probe.probe_site(auth, timeout=timeout, session=session)``, awaited on ``http``'s event loop:
    ``session`` (keystoneauth's, normally the process pool's) gives its token while that is fresh; a login,
    when one is due, leaves the new token in it. A call refused with 401, or a Keystone that does not
    answer, drops the token and the probe runs once more with a new login. Never raises for a site-side
    failure. ``site`` names the per-site bound of ``http``."""
    interface = auth.get("interface", "public")
    region = auth.get("region_name") or None
    started = time.monotonic()
    held = getattr(session.auth, "auth_ref", None) is not None
    result, refused = await _probe(http, site, session, interface, region, timeout, started)
    keystone = next((s for s in result.services if s.type == "identity"), None)
    silent = not any(s.ok for s in result.services) if keystone is None else not keystone.ok
    if held and result.reachable and (refused or silent):
        session.invalidate()
        result, _ = await _probe(http, site, session, interface, region, timeout, time.monotonic())
    elif held and keystone is not None:  # no login this time: Keystone's answer time stands for it
        result = dataclasses.replace(result, latency_ms=keystone.latency_ms)
    return result
