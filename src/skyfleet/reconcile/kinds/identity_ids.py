"""The ids of a Keystone's domains and global roles by name, remembered for a short while per
Keystone by the identity kinds.

Why it exists: a fleet of declared users and role assignments runs one task per declaration and
site, and every one of them looked up the same domain (``GET /v3/domains?name=``) and role
(``GET /v3/roles?name=``) again: two of the six requests of a role assignment and two of the four of
a new user (bench/identity_floor.py). These ids do not change while the objects exist, so a found id
is kept for ``TTL`` seconds, keyed by the Keystone's identity endpoint (regions of one cloud share
it). An absent one is never remembered (its own task may be about to create it).

A stale id (the domain or role was deleted, perhaps re-created, within ``TTL``) costs at most one
failed attempt: the kinds forget the Keystone's ids when a write fails (:func:`forgetting`), and
when the attempt used a remembered id the failure is made temporary, so the retry looks them up
again (a real refusal then fails it). Skyfleet's own domain deletion forgets the ids at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cachetools import TTLCache

from skyfleet.drivers.openstack import identityapi
from skyfleet.errors import SiteError, TemporarySiteError
from skyfleet.reconcile.kinds import SiteContext

TTL = 30.0
_IDS: TTLCache[tuple[str, str, str], str] = TTLCache(maxsize=200_000, ttl=TTL)
_LOCK = threading.Lock()
_ATTEMPT = threading.local()  # whether this thread's current attempt used a remembered id (``hit``)


def _keystone(ctx: SiteContext) -> str:
    return str(ctx.auth.get("auth_url") or ctx.site_id).rstrip("/")


def _remembered(ctx: SiteContext, what: str, name: str, look: Callable[[], str | None]) -> str | None:
    key = (_keystone(ctx), what, name)
    with _LOCK:
        found = _IDS.get(key)
    if found is not None:
        _ATTEMPT.hit = True
        return found
    found = look()
    if found is not None:
        with _LOCK:
            _IDS[key] = found
    return found


def begin() -> None:
    """A task attempt starts on this thread: it has used no remembered id yet."""
    _ATTEMPT.hit = False


def domain_id(ctx: SiteContext, name: str) -> str | None:
    """The id of the domain named ``name`` in the site's Keystone, None when it has none."""
    return _remembered(ctx, "domain", name, lambda: identityapi.domain_id(ctx.connection(), name))


def role_id(ctx: SiteContext, name: str) -> str | None:
    """The id of the global role named ``name`` in the site's Keystone, None when it has none."""
    return _remembered(ctx, "role", name, lambda: identityapi.find_role(ctx.connection(), name))


def forget(ctx: SiteContext) -> None:
    """Drop every id remembered for the site's Keystone."""
    keystone = _keystone(ctx)
    with _LOCK:
        for key in [k for k in list(_IDS.keys()) if k[0] == keystone]:
            _IDS.pop(key, None)


@contextmanager
def forgetting(ctx: SiteContext) -> Iterator[None]:
    """Writes made with remembered ids: on a failure the Keystone's ids are forgotten, and a permanent
    failure of an attempt that used a remembered id becomes temporary (the retry looks the ids up
    again; a real refusal then fails it)."""
    try:
        yield
    except SiteError as exc:
        forget(ctx)
        if exc.temporary or not getattr(_ATTEMPT, "hit", False):
            raise
        raise TemporarySiteError(
            f"{exc.message} (retried with the site's ids looked up again)", status=exc.status
        ) from exc
