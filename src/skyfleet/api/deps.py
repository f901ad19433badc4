"""FastAPI dependencies: the process runtime, the calling principal, and the access decision.

``authorize`` is installed on the whole application: every API route runs it before its own code,
so the decision of ``access`` is taken once per request, for Kingbird routes as for the others.
``get_principal`` only says who the caller is (tests replace it to call as someone else; the
decision still runs).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from skyfleet import log_context
from skyfleet.api import access, sessions
from skyfleet.api.auth import NOAUTH_ADMIN, Principal
from skyfleet.api.ratelimit import RateLimiter
from skyfleet.api.runtime import Runtime
from skyfleet.errors import Forbidden, Unauthorized, Unavailable


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


ANONYMOUS = Principal(user_id="", user_name=None, project_id=None, project_name=None)


def get_principal(request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]) -> Principal:
    """Who calls: the token's principal, or :data:`ANONYMOUS` without a valid token (public routes
    take it and ignore the token; ``authorize`` refuses it everywhere else with the reason kept here).

    The token is the ``X-Auth-Token`` header, else the one the dashboard's session cookie stands for
    (:mod:`skyfleet.api.sessions`): a request authenticated by the cookie must come from this origin
    and, to change anything, carry the session's CSRF token (403 otherwise, on every route). Either
    way the principal is the token's, and ``authorize`` decides the same for both."""
    if runtime.validator is None:
        return NOAUTH_ADMIN
    token = request.headers.get("X-Auth-Token")
    session_id = None
    if not token:
        session_id = request.cookies.get(sessions.SESSION_COOKIE)
        if not session_id:
            return ANONYMOUS
        session = sessions.store_of(request).get(session_id)
        if session is None:
            request.state.auth_error = Unauthorized("the dashboard session is unknown or has expired: sign in again")
            return ANONYMOUS
        sessions.check_browser_request(request, session, runtime.settings)
        token = session.token
    try:
        return runtime.validator.validate(token)
    except (Unauthorized, Unavailable) as exc:
        if session_id is not None and isinstance(exc, Unauthorized):  # revoked at Keystone: the session too
            sessions.store_of(request).forget(session_id)
        request.state.auth_error = exc
        return ANONYMOUS


def route_key(request: Request) -> str:
    """``METHOD /path/{template}`` of the route that matched, as :data:`access.POLICY` names it (a
    trailing slash, which some Kingbird clients send, names the same route)."""
    route = request.scope.get("route")
    path = route.path_format if isinstance(route, APIRoute) else request.url.path
    return f"{request.method} {path.rstrip('/') or '/'}"


def _limiter(request: Request, runtime: Runtime) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "fanout_limiter", None)
    if limiter is None:
        limiter = RateLimiter(rate=runtime.settings.fanout_rate, burst=runtime.settings.fanout_burst)
        request.app.state.fanout_limiter = limiter
    return limiter


def scrape_token_ok(request: Request, runtime: Runtime) -> bool:
    """Whether the request carries the configured metrics scrape token (never when none is configured)."""
    expected = runtime.settings.metrics_token.get_secret_value()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                                expected.encode())


def authorize(request: Request, runtime: Annotated[Runtime, Depends(get_runtime)],
              principal: Annotated[Principal, Depends(get_principal)]) -> None:
    """The access decision of every route (see :mod:`skyfleet.api.access`)."""
    key = route_key(request)
    rule = access.POLICY.get(key)
    if rule is None:  # a route without a row is closed to everybody
        raise Forbidden(f"{key}: no access rule; refused")
    if rule.need == access.Need.PUBLIC or (rule.scrape_token and scrape_token_ok(request, runtime)):
        return
    if principal is ANONYMOUS:
        raise getattr(request.state, "auth_error", None) or \
            Unauthorized("missing X-Auth-Token header (a Keystone token from the home Keystone) or dashboard "
                         "session cookie")
    request.state.principal = principal
    access.decide(principal, rule, dict(request.path_params), key)
    fanout = rule.fanout if isinstance(rule.fanout, bool) else \
        request.query_params.get(rule.fanout, "").lower() in ("1", "true", "yes")
    if fanout and not principal.is_admin:
        _limiter(request, runtime).spend(f"{principal.user_id}/{principal.project_id}", key)


async def bind_log_context(request: Request) -> None:
    """Put the caller's user and project ids in the log context of the request (never its token).

    Async on purpose: it runs in the request's own task, so the ids reach the route's code (sync
    routes run in a thread that copies this context); ``authorize`` runs in a worker thread whose
    context changes would be lost."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        log_context.bind(user_id=principal.user_id or None, project_id=principal.project_id)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
