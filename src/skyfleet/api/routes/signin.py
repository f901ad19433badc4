"""Sign-in with the home Keystone: ``/v1/auth/tokens`` for API clients, ``/v1/auth/session`` for the dashboard.

Why it exists: the dashboard's users know their password, not how to issue a token. Skyfleet asks its
home Keystone (``home_auth_url``, the one that validates every token) for a token scoped to the named
project.

- ``POST /v1/auth/tokens`` hands that token back in the body, for scripts and API clients that then
  send it as ``X-Auth-Token`` like any other token; it sets no cookie and the dashboard does not use it.
- ``POST /v1/auth/session`` (the dashboard) keeps the token on the server and sets an HttpOnly session
  cookie instead (:mod:`skyfleet.api.sessions`); the body says who signed in and gives the CSRF token,
  never the Keystone token. It also takes a token pasted into the dashboard (``X-Auth-Token`` header,
  no body), validated like any other, so the page keeps no token either way.
  ``GET /v1/auth/session`` says who the caller is (or why nobody is signed in) and
  ``DELETE /v1/auth/session`` signs out: the session is forgotten and both cookies cleared.

The sign-in routes are public (no token to sign in), the password is never logged or echoed
(validation errors do not repeat input), and failed attempts are limited per source address
(``signin_failure_burst`` at once, then ``signin_failure_rate`` per second; beyond, 429 without asking
Keystone) so the routes cannot be used to guess passwords or tokens. A sign-in from a page of another
origin is refused (403), so no other site can sign a browser in as someone else. Without a home
Keystone (noauth mode) there is nothing to sign in to: 404.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from skyfleet.api import access, sessions
from skyfleet.api.auth import IssuedToken, Principal, password_token
from skyfleet.api.deps import ANONYMOUS, PrincipalDep, RuntimeDep
from skyfleet.api.ratelimit import RateLimiter, TooManyRequests
from skyfleet.api.runtime import Runtime
from skyfleet.errors import ApiError, Forbidden, Invalid, NotFound, Unauthorized

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=255, description="User name in the home Keystone.")
    password: SecretStr = Field(min_length=1, max_length=4096, description="The user's password (never logged).")
    project: str = Field(min_length=1, max_length=64, description="Project the token is scoped to.")
    domain: str = Field("Default", min_length=1, max_length=255,
                        description="Domain of the user and of the project.")


class SignedIn(BaseModel):
    token: str = Field(description="A project-scoped Keystone token: send it as X-Auth-Token.")
    expires_at: datetime | None = Field(description="When the home Keystone says the token expires.")
    user_name: str | None
    project_id: str | None
    project_name: str | None
    roles: list[str]


def _limiter(request: Request, runtime: RuntimeDep) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "signin_limiter", None)
    if limiter is None:
        settings = runtime.settings
        limiter = RateLimiter(rate=settings.signin_failure_rate, burst=settings.signin_failure_burst,
                              unit="failed sign-ins", caller="one address")
        request.app.state.signin_limiter = limiter
    return limiter


def _issue(body: Credentials, request: Request, runtime: Runtime, what: str) -> IssuedToken:
    """A token for ``body``'s credentials; failures counted against the caller's address."""
    settings = runtime.settings
    if runtime.validator is None or not settings.home_auth_url:
        raise NotFound("no home Keystone is configured (noauth mode): there is nothing to sign in to")
    limiter = _limiter(request, runtime)
    source = request.client.host if request.client else "unknown"
    limiter.spend(source, what, take=False)  # an address that failed too often does not reach Keystone
    try:
        return password_token(settings, username=body.username, password=body.password.get_secret_value(),
                              project=body.project, domain=body.domain)
    except Unauthorized:
        with contextlib.suppress(TooManyRequests):  # this failure is answered 401; the next one gets 429
            limiter.spend(source, what)
        raise


@router.post("/tokens", response_model=SignedIn, status_code=201)
def sign_in(body: Credentials, request: Request, runtime: RuntimeDep) -> SignedIn:
    """A token of the home Keystone for a user name, password and project, for API clients (the
    dashboard signs in with ``POST /v1/auth/session`` and never sees a token)."""
    issued = _issue(body, request, runtime, "POST /v1/auth/tokens")
    return SignedIn(token=issued.token, expires_at=issued.expires_at, user_name=issued.user_name,
                    project_id=issued.project_id, project_name=issued.project_name, roles=list(issued.roles))


class SessionOut(BaseModel):
    """Who a dashboard session (or a token) stands for; never the Keystone token itself."""

    authenticated: bool = Field(description="Whether the caller is signed in (a valid session or token).")
    via: Literal["session", "token", "noauth"] | None = Field(
        None, description="How: the dashboard's session cookie, an X-Auth-Token header, or noauth mode.")
    reason: str | None = Field(None, description="Why nobody is signed in (an expired session, a refused token).")
    user_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    roles: list[str] = Field(default_factory=list)
    fleet_admin: bool = Field(False, description="Whether the caller is a fleet admin (every site, every project).")
    domain_name: str | None = Field(None, description="The domain of a domain-scoped token.")
    domain_admin: bool = Field(False, description="Whether the caller is a domain admin: the declared identity "
                               "of domain_name only (/v1/identity), nothing of the fleet.")
    expires_at: datetime | None = Field(None, description="When the session ends (its token's expiry at the latest).")
    csrf_token: str | None = Field(
        None, description="At sign-in only: send it as X-CSRF-Token with every POST, PUT, PATCH and DELETE "
        "(also in the skyfleet_csrf cookie).")


def _who(principal: Principal, via: Literal["session", "token", "noauth"], expires: float | None = None,
         csrf: str | None = None) -> SessionOut:
    return SessionOut(authenticated=True, via=via, user_name=principal.user_name, project_id=principal.project_id,
                      project_name=principal.project_name, roles=list(principal.roles), csrf_token=csrf,
                      fleet_admin=principal.is_admin, domain_name=principal.domain_name,
                      domain_admin=principal.domain_admin and not principal.is_admin,
                      expires_at=None if expires is None or expires == float("inf")
                      else datetime.fromtimestamp(expires, UTC))


@router.post("/session", response_model=SessionOut, status_code=201)
def create_session(request: Request, response: Response, runtime: RuntimeDep,
                   body: Credentials | None = Body(None)) -> SessionOut:
    """Sign the dashboard in: with a user name and password (the body), or by exchanging a token of
    the home Keystone (``X-Auth-Token`` header, no body). Sets the HttpOnly session cookie and the
    CSRF cookie; the answer names who signed in and carries the CSRF token, never the Keystone token."""
    settings = runtime.settings
    what = "POST /v1/auth/session"
    if runtime.validator is None or not settings.home_auth_url:
        raise NotFound("no home Keystone is configured (noauth mode): there is nothing to sign in to")
    sessions.check_origin(request, settings)  # no other site signs this browser in as someone else
    store = sessions.store_of(request)
    if body is not None:
        token = _issue(body, request, runtime, what).token
        principal, expires = runtime.validator.validate_until(token)
    else:
        token = request.headers.get("X-Auth-Token") or ""
        if not token:
            raise Invalid("send a user name, password and project, or a token of the home Keystone in the "
                          "X-Auth-Token header")
        limiter = _limiter(request, runtime)
        source = request.client.host if request.client else "unknown"
        limiter.spend(source, what, take=False)
        try:
            principal, expires = runtime.validator.validate_until(token)
        except Unauthorized:
            with contextlib.suppress(TooManyRequests):
                limiter.spend(source, what)
            raise
    # a session that could read nothing helps nobody; a domain admin reads its domain's declared identity
    if access.level(principal) == access.Need.PUBLIC and not principal.domain_admin:
        raise Forbidden(f"{what}: this token reaches no level of access; {access.refusal(principal)}")
    old = request.cookies.get(sessions.SESSION_COOKIE)
    if old:
        store.forget(old)  # a new sign-in never reuses an id (no session fixation)
    session_id, session = store.create(token, expires)
    sessions.set_cookies(response, request, settings, session_id, session)
    return _who(principal, "session", session.expires, session.csrf)


@router.get("/session", response_model=SessionOut)
def read_session(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> SessionOut:
    """Who the caller is: the session's user (when it ends), the token's, or nobody and why (200 even
    then: the dashboard asks before it knows whether anybody signed in)."""
    if runtime.validator is None:
        return _who(principal, "noauth")
    if principal is ANONYMOUS:
        error = getattr(request.state, "auth_error", None)
        return SessionOut(authenticated=False, reason=error.detail if isinstance(error, ApiError) else None)
    if request.headers.get("X-Auth-Token"):
        return _who(principal, "token")
    session = sessions.store_of(request).get(request.cookies.get(sessions.SESSION_COOKIE) or "")
    return _who(principal, "session", session.expires if session else None)


@router.delete("/session", status_code=204)
def delete_session(request: Request, runtime: RuntimeDep) -> Response:
    """Sign the dashboard out: forget the session (its token is no longer reachable) and clear both
    cookies. A live session's sign-out needs its CSRF token, like any other change."""
    session_id = request.cookies.get(sessions.SESSION_COOKIE)
    if session_id:
        sessions.store_of(request).forget(session_id)
    response = Response(status_code=204)
    sessions.clear_cookies(response, request, runtime.settings)
    return response
