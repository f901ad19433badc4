"""The sync kinds' REST calls (``syncapi``) on the shared aiohttp event loop, with keystoneauth's token.

Why it exists: through keystoneauth's adapters and requests, one call cost 1-3 ms of CPU, most of it
around the request rather than in it (in a 1,000-site keypair fan-out: the service catalog deep-copied
to find the endpoint on every call, the proxy variables of the environment scanned on every call,
requests' and urllib3's machinery); a worker thread sending through the health audit's aiohttp
loop (``audit_http``) and waiting on the future costs a fraction of that.

What stays keystoneauth's: the login and the token (``session.get_auth_headers``, which logs in again
when the token expires), the endpoint (the adapter's own lookup, version discovery included, done once
per session, service and token: cached until the session holds another token), the TLS setting
(``session.verify``: a bool or a CA path) and the timeout (``session.timeout``). What this module
does as keystoneauth and requests did: the microversion headers, the JSON body, the query string and
the path quoted as requests quotes them, the proxy of the environment (``*_proxy``/``no_proxy``, as
requests picks it, decided once per origin and process), and a 401 answered by invalidating the session's
token and sending once more. A session with a client certificate keeps the keystoneauth path
(``syncapi`` checks :func:`supported`). Bodies are never logged; ``log`` only allows a DEBUG line with
the method, path and status.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from openstack import connection as sdk_connection
from requests.utils import get_environ_proxies, requote_uri, select_proxy

from skyfleet.drivers.openstack.audit_http import AuditHttp, Reply, Request
from skyfleet.drivers.openstack.errors import from_status, site_call
from skyfleet.errors import PermanentSiteError, SiteError, TemporarySiteError

_LOG = logging.getLogger(__name__)
_USER_AGENT = "skyfleet-sync"
# The engine bounds the calls per site and in all (its threads each wait on one call); these bounds
# only keep a runaway caller from opening unbounded connections.
_CONCURRENCY = 512
_NO_TIMEOUT_SECONDS = 600.0  # a session without a timeout: keystoneauth would wait forever
_GRACE = 30.0  # the worker's wait beyond the call's own timeout (the loop enforces that one)


@dataclass
class _Endpoints:
    auth_ref: object  # the token the URLs were found with: a new login may bring another catalog
    urls: dict[str, str]


class _Shared:
    """The process's client (started on first use; again in a forked child) and its caches."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.http = AuditHttp(concurrency=_CONCURRENCY, per_site=_CONCURRENCY)
        self.endpoints: weakref.WeakKeyDictionary[ks_session.Session, _Endpoints] = weakref.WeakKeyDictionary()
        self.proxy_of: dict[str, str | None] = {}


_lock = threading.Lock()
_shared: _Shared | None = None


def _state() -> _Shared:
    global _shared
    found = _shared
    if found is not None and found.pid == os.getpid():
        return found
    with _lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = _Shared()
            atexit.register(_shared.http.close)  # closed clients: no "unclosed session" noise at exit
        return _shared


def supported(conn: sdk_connection.Connection) -> bool:
    """Whether this connection's calls can take the aiohttp path (a client certificate cannot, yet)."""
    return not conn.session.cert


def _adapter(conn: sdk_connection.Connection, service: str) -> ks_adapter.Adapter:
    if service == "compute":
        # Nova's catalog URL (always versioned, /v2.1) as it is: no version discovery
        return ks_adapter.Adapter(session=conn.session, service_type="compute", interface=conn.config.interface,
                                  region_name=conn.config.region_name)
    adapter: ks_adapter.Adapter = getattr(conn, service)
    return adapter


def endpoint(conn: sdk_connection.Connection, service: str) -> str:
    """The URL keystoneauth's adapter for ``service`` joins paths to, found once per session and token."""
    state = _state()
    session = conn.session
    found = state.endpoints.get(session)
    if found is not None and found.auth_ref is getattr(session.auth, "auth_ref", None) and service in found.urls:
        return found.urls[service]
    # the base class's lookup (it may log in): some openstacksdk proxies (identity) give get_endpoint
    # another meaning
    looked_up = ks_adapter.Adapter.get_endpoint(_adapter(conn, service))
    if not looked_up:
        raise PermanentSiteError(f"service not in the site's catalog: {service}")
    auth_ref = getattr(session.auth, "auth_ref", None)
    found = state.endpoints.get(session)
    if found is None or found.auth_ref is not auth_ref:
        found = state.endpoints[session] = _Endpoints(auth_ref, {})
    url = found.urls[service] = str(looked_up).rstrip("/")
    return url


def _proxy(state: _Shared, url: str) -> str | None:
    """The proxy requests would pick for ``url`` from the environment, decided once per origin."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin not in state.proxy_of:
        state.proxy_of[origin] = select_proxy(url, get_environ_proxies(url))
    return state.proxy_of[origin]


def _query(params: dict[str, Any] | None) -> str:
    """The query string requests would send: None values left out, lists repeated."""
    if not params:
        return ""
    pairs = {key: value for key, value in params.items() if value is not None}
    return "?" + urlencode(pairs, doseq=True) if pairs else ""


def _headers(service: str, microversion: str | None, token: dict[str, str], body: bytes | None) -> dict[str, str]:
    headers = {"User-Agent": _USER_AGENT, "Accept": "application/json", **token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if microversion:
        # keystoneauth names Cinder "volume" in the header whatever the adapter's service type
        named = "volume" if service in ("block_storage", "block-storage") or service.startswith("volume") else service
        headers["OpenStack-API-Version"] = f"{named} {microversion}"
        if service == "compute":
            headers["X-OpenStack-Nova-API-Version"] = microversion
    return headers


def _failure(reply: Reply) -> SiteError:
    if reply.timed_out:
        return TemporarySiteError("timed out: the site did not answer in time")
    return TemporarySiteError(reply.error or "cannot connect")


def request(conn: sdk_connection.Connection, service: str, method: str, path: str, *,
            body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
            microversion: str | None = None, log: bool = True) -> tuple[int, bytes]:
    """Send one request to ``service`` of the connection's site and wait for it: (status, body bytes).
    Raises :class:`SiteError` when no answer came (timeout, connection refused ...) or no token."""
    state = _state()
    session = conn.session
    absolute = path.startswith(("http://", "https://"))  # as keystoneauth: a full URL is sent as it is
    with site_call():
        base = "" if absolute else endpoint(conn, service)
        token = session.get_auth_headers() or {}  # may log in
    url = requote_uri(path if absolute else f"{base}/{path.lstrip('/')}") + _query(params)
    data = None if body is None else json.dumps(body).encode()
    timeout = float(session.timeout) if session.timeout else _NO_TIMEOUT_SECONDS
    origin = url[:url.find("/", url.find("//") + 2)]
    call = Request(site=origin, method=method, url=url, headers=_headers(service, microversion, token, data),
                   body=data, verify=session.verify, timeout=timeout, proxy=_proxy(state, url))
    reply = state.http.send(call).result(timeout + _GRACE)
    if reply.status == 401 and session.invalidate():  # a revoked or rotated token: log in again, once
        with site_call():
            token = session.get_auth_headers() or {}
        retry = Request(site=origin, method=method, url=url, headers=_headers(service, microversion, token, data),
                        body=data, verify=session.verify, timeout=timeout, proxy=call.proxy)
        reply = state.http.send(retry).result(timeout + _GRACE)
    if log:
        _LOG.debug("%s %s -> %s", method, url.split("?", 1)[0], reply.status or reply.error)
    if reply.status is None:
        raise _failure(reply)
    return reply.status, reply.body


def decoded(status: int, raw: bytes, *, missing_ok: bool) -> Any:
    """What ``syncapi`` returns for an answer: its JSON (or {}), None for a 404 when ``missing_ok``."""
    if status == 404 and missing_ok:
        return None
    if status >= 400:
        raise from_status(status, raw.decode("utf-8", "replace")[:500])
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}
