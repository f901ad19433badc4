"""Reuse one keystoneauth session (and token) and one openstacksdk connection per site credential.

Authenticating costs a round trip and building an openstacksdk Connection costs CPU; a fleet-wide
fan-out would pay both for every task. Entries are keyed by a hash of the auth document (so a
changed credential gets a fresh session) and expire after ``ttl`` seconds.
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
