"""POST /v1/auth/tokens: sign in with a user name and password of the home Keystone.

Why it exists: the dashboard's users know their password, not how to issue a token. Skyfleet asks its
home Keystone (``home_auth_url``, the one that validates every token) for a token scoped to the named
project and hands it back; the browser keeps it in its tab and sends it as ``X-Auth-Token`` like any
other token. Nothing is kept here: no session, no cookie. The route is public (no token to sign in),
the password is never logged or echoed (validation errors do not repeat input), and failed attempts
are limited per source address (``signin_failure_burst`` at once, then ``signin_failure_rate`` per
second; beyond, 429 without asking Keystone) so the route cannot be used to guess passwords. Without
a home Keystone (noauth mode) there is nothing to sign in to: 404.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from skyfleet.api.auth import password_token
from skyfleet.api.deps import RuntimeDep
from skyfleet.api.ratelimit import RateLimiter, TooManyRequests
from skyfleet.errors import NotFound, Unauthorized

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


@router.post("/tokens", response_model=SignedIn, status_code=201)
def sign_in(body: Credentials, request: Request, runtime: RuntimeDep) -> SignedIn:
    """A token of the home Keystone for a user name, password and project (the dashboard's sign-in)."""
    settings = runtime.settings
    if runtime.validator is None or not settings.home_auth_url:
        raise NotFound("no home Keystone is configured (noauth mode): there is nothing to sign in to")
    limiter = _limiter(request, runtime)
    source = request.client.host if request.client else "unknown"
    what = "POST /v1/auth/tokens"
    limiter.spend(source, what, take=False)  # an address that failed too often does not reach Keystone
    try:
        issued = password_token(settings, username=body.username, password=body.password.get_secret_value(),
                                project=body.project, domain=body.domain)
    except Unauthorized:
        with contextlib.suppress(TooManyRequests):  # this failure is answered 401; the next one gets 429
            limiter.spend(source, what)
        raise
    return SignedIn(token=issued.token, expires_at=issued.expires_at, user_name=issued.user_name,
                    project_id=issued.project_id, project_name=issued.project_name, roles=list(issued.roles))
