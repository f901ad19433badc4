"""The dashboard's sessions: an opaque id in an HttpOnly cookie, mapped here to the user's Keystone token.

Why it exists: a token kept by the page (sessionStorage) is readable by any script that runs in it, so
one XSS would carry it away. Signed in from the dashboard (``POST /v1/auth/session``), the browser
holds only a random id in the ``skyfleet_session`` cookie (``HttpOnly; SameSite=Strict; Path=/``, and
``Secure`` over https or with ``session_cookie_secure``); the token stays in this process's memory
and never leaves the server again. :func:`skyfleet.api.deps.get_principal` finds the token through the
cookie when no ``X-Auth-Token`` header is sent; what the caller may do is still decided by
:mod:`skyfleet.api.access` from that token's principal, as for any other caller.

The map lives in memory, keyed by a SHA-256 of the id (the id itself is kept nowhere), bounded to
``session_max`` entries (the oldest is forgotten first), each forgotten when its token expires (or
after ``session_max_seconds``). A restart therefore signs every dashboard user out, and API replicas
behind a load balancer need session affinity for the dashboard (documented in docs/security.md);
callers that send ``X-Auth-Token`` are not concerned.

CSRF: a cookie is sent by the browser on its own, so a request it authenticates must prove that it
comes from the dashboard's own page. Each session has a random CSRF token, handed out at sign-in in
the body and in the ``skyfleet_csrf`` cookie (readable by the page, ``SameSite=Strict``); every
state-changing request (POST, PUT, PATCH, DELETE) authenticated by the session cookie must echo it in
``X-CSRF-Token``, compared here with the session's own (not only with the cookie: a cookie planted by
a sibling domain cannot pass). When the request says where it comes from (``Origin``, else
``Referer``), that must be this server's origin too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from skyfleet.config import Settings
from skyfleet.errors import Forbidden

SESSION_COOKIE = "skyfleet_session"
CSRF_COOKIE = "skyfleet_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID_CHARS = 128  # ids are 43 characters; a longer cookie is not ours


@dataclass(frozen=True)
class BrowserSession:
    """One signed-in dashboard: the token it stands for (never logged, never sent back), its CSRF
    token and when it ends (epoch seconds)."""

    token: str
    csrf: str
    expires: float


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions by the hash of their id, in creation order, bounded and expiring; thread safe."""

    def __init__(self, *, max_sessions: int, max_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._max, self._max_seconds, self._clock = max_sessions, max_seconds, clock
        self._sessions: OrderedDict[str, BrowserSession] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(self, token: str, expires: float) -> tuple[str, BrowserSession]:
        """A new session for ``token`` until ``expires`` (at most ``max_seconds`` from now): its id
        (for the cookie only) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = BrowserSession(token=token, csrf=secrets.token_urlsafe(32),
                                 expires=min(expires, self._clock() + self._max_seconds))
        with self._lock:
            self._prune()
            while len(self._sessions) >= self._max:
                self._sessions.popitem(last=False)  # the oldest sign-in makes room
            self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str) -> BrowserSession | None:
        """The live session of ``session_id``, or None (unknown, expired: then forgotten)."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return None
        key = _key(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires <= self._clock():
                del self._sessions[key]
                return None
        return session

    def forget(self, session_id: str) -> bool:
        """Sign a session out; whether it was known."""
        with self._lock:
            return self._sessions.pop(_key(session_id), None) is not None

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]


def store_of(request: Request) -> SessionStore:
    """The application's session store (made on first use, from the runtime's settings)."""
    store: SessionStore | None = getattr(request.app.state, "sessions", None)
    if store is None:
        settings: Settings = request.app.state.runtime.settings
        store = SessionStore(max_sessions=settings.session_max, max_seconds=settings.session_max_seconds)
        request.app.state.sessions = store
    return store


def _secure(request: Request, settings: Settings) -> bool:
    return settings.session_cookie_secure or request.url.scheme == "https"


def own_origin(request: Request, settings: Settings) -> set[str]:
    """The origins this request's page may have: the scheme and Host it was sent to (https too when
    the cookies are Secure, e.g. behind a TLS-terminating proxy)."""
    host = request.headers.get("host", "").lower()
    schemes = {request.url.scheme} | ({"https"} if settings.session_cookie_secure else set())
    return {f"{scheme}://{host}" for scheme in schemes}


def check_origin(request: Request, settings: Settings) -> None:
    """Refuse (403) a request whose Origin (else Referer) names another origin than this server."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin.lower().rstrip("/") not in own_origin(request, settings):
        raise Forbidden("this request comes from a page of another origin than this server (Origin or Referer "
                        "header); a dashboard session is only used by the dashboard's own pages")


def check_browser_request(request: Request, session: BrowserSession, settings: Settings) -> None:
    """What a request authenticated by the session cookie must show: its own origin, and for a
    state-changing method the session's CSRF token in ``X-CSRF-Token``."""
    check_origin(request, settings)
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if not given:
        raise Forbidden(f"{request.method} authenticated by the dashboard's session cookie needs the "
                        f"{CSRF_HEADER} header (the value of the {CSRF_COOKIE} cookie, given at sign-in); "
                        "API clients send X-Auth-Token instead")
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise Forbidden(f"the {CSRF_HEADER} header does not match this session's CSRF token; sign in again")


def set_cookies(response: Response, request: Request, settings: Settings, session_id: str,
                session: BrowserSession) -> None:
    """The session cookie (HttpOnly) and the CSRF cookie (readable by the page), for the session's life."""
    max_age = max(1, int(session.expires - time.time()))
    secure = _secure(request, settings)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=max_age, path="/", secure=secure, httponly=True,
                        samesite="strict")
    response.set_cookie(CSRF_COOKIE, session.csrf, max_age=max_age, path="/", secure=secure, httponly=False,
                        samesite="strict")


def clear_cookies(response: Response, request: Request, settings: Settings) -> None:
    """Both cookies expired at once, with the attributes they were set with."""
    secure = _secure(request, settings)
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=httponly, samesite="strict")
