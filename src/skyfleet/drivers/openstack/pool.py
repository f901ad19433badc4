"""Reuse one keystoneauth session (and token) and one openstacksdk connection per site credential.

Authenticating costs a round trip and building an openstacksdk Connection costs CPU; a fleet-wide
fan-out would pay both for every task. Entries are keyed by a hash of the auth document (so a
changed credential gets a fresh session) and expire after ``ttl`` seconds.

The health audit probes with this pool's session of each site and keeps it between cycles, logging in
only when the token nears expiry or a call refuses it (``reconcile.audit_cycle``); a probe made with
a session of its own (registration) hands the token it got to this pool (:meth:`SitePool.share`), so
the engine's next task on the site, and the inventory refresh, use it instead of logging in again:
keystoneauth's login is the costliest client-side part of a site call.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from cachetools import TTLCache
from keystoneauth1 import session as ks_session
from openstack import connection as sdk_connection

from skyfleet.drivers.openstack.session import make_session


def _key(auth: dict[str, Any], timeout: float) -> str:
    blob = json.dumps(auth, sort_keys=True, default=str) + f"|{timeout}"
    return hashlib.sha256(blob.encode()).hexdigest()


class SitePool:
    """Thread-safe cache of sessions and connections."""

    def __init__(self, *, maxsize: int = 20_000, ttl: float = 1800.0) -> None:
        self._sessions: TTLCache[str, ks_session.Session] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._connections: TTLCache[str, sdk_connection.Connection] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def session(self, auth: dict[str, Any], *, timeout: float) -> ks_session.Session:
        key = _key(auth, timeout)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                found = self._sessions[key] = make_session(auth, timeout=timeout)
            return found

    def share(self, auth: dict[str, Any], *, timeout: float, fresh: ks_session.Session) -> None:
        """Let this credential's cached session use the token ``fresh`` just obtained (adopting ``fresh``
        when none is cached): the token is newer than, or as new as, any the pool holds."""
        access = getattr(fresh.auth, "auth_ref", None)
        if access is None:
            return
        key = _key(auth, timeout)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                self._sessions[key] = fresh
                return
        held = getattr(found.auth, "auth_ref", None)
        if held is None or held.expires is None or (access.expires is not None and access.expires >= held.expires):
            found.auth.auth_ref = access  # keystoneauth uses a plugin's auth_ref until it nears expiry

    def connection(self, auth: dict[str, Any], *, timeout: float) -> sdk_connection.Connection:
        key = _key(auth, timeout)
        with self._lock:
            found = self._connections.get(key)
        if found is not None:
            return found
        conn = sdk_connection.Connection(
            session=self.session(auth, timeout=timeout), region_name=auth.get("region_name") or None,
            interface=auth.get("interface", "public"), strict_proxies=False,
        )
        with self._lock:
            return self._connections.setdefault(key, conn)
