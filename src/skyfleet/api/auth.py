"""Who is calling: Keystone tokens validated against the home Keystone, or noauth for local use.

Validations are cached for ``token_cache_seconds`` (never past the token's own expiry) under a hash
of the token, in bounded caches: the token itself is never kept, logged or registered anywhere, so
a flood of made-up tokens grows nothing. Refused tokens are remembered for a few seconds so the
same one does not reach Keystone again at once. The admin role on the admin project (or a
system-scoped token with it) makes a fleet admin; any role on project P makes a tenant of P, which
only reads when its roles are all reader roles; the admin role on a domain-scoped token makes a
domain admin of that domain (declared identity inside it only). What each may do is decided in
``access``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from keystoneauth1 import exceptions as ks_exc

from skyfleet.config import Settings
from skyfleet.drivers.openstack.session import make_session
from skyfleet.errors import Unauthorized, Unavailable
from skyfleet.logs import SECRETS

MAX_TOKEN_CHARS = 8192  # Fernet tokens are ~200 characters and JWS ~800; anything this long is not a token
REFUSED_TTL = 5.0


@dataclass(frozen=True)
class Principal:
    user_id: str
    user_name: str | None
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...] = field(default_factory=tuple)
    is_admin: bool = False
    read_only: bool = False  # every role is a reader role
    system: bool = False  # a system-scoped token (no project)
    project_domain_name: str | None = None
    user_domain_name: str | None = None
    # a domain-scoped token: the domain it is scoped to (Keystone's ``token.domain``), and whether it
    # carries the admin role there (a domain admin: declared identity in that domain only)
    domain_id: str | None = None
    domain_name: str | None = None
    domain_admin: bool = False


NOAUTH_ADMIN = Principal(user_id="noauth", user_name="noauth", project_id=None, project_name=None,
                         roles=("admin",), is_admin=True, system=True)


def principal_from_token(body: dict[str, Any], *, admin_role: str, admin_project: tuple[str, str] | None,
                         reader_roles: frozenset[str]) -> Principal:
    """The caller described by a Keystone token body (``GET /v3/auth/tokens``)."""
    roles = tuple(sorted(r["name"] for r in body.get("roles", [])))
    project = body.get("project") or {}
    user = body.get("user") or {}
    system = bool(body.get("system"))
    project_domain = (project.get("domain") or {}).get("name")
    on_admin_project = admin_project is None or (
        project.get("name") == admin_project[0] and project_domain in (admin_project[1], None))
    # Keystone scopes a token to one of project, domain or system; only a pure domain scope counts here
    domain = (body.get("domain") or {}) if not project and not system else {}
    return Principal(
        user_id=user.get("id", ""), user_name=user.get("name"), project_id=project.get("id"),
        project_name=project.get("name"), roles=roles,
        is_admin=admin_role in roles and (system or (bool(project) and on_admin_project)),
        read_only=bool(roles) and set(roles) <= reader_roles, system=system,
        project_domain_name=project_domain, user_domain_name=(user.get("domain") or {}).get("name"),
        domain_id=domain.get("id"), domain_name=domain.get("name"),
        domain_admin=admin_role in roles and bool(domain.get("id")) and bool(domain.get("name")),
    )


class TokenValidator:
    """Validates user tokens against the home Keystone with a service session."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        SECRETS.add(settings.home_password.get_secret_value())
        self._auth = {
            "auth_url": settings.home_auth_url, "username": settings.home_username,
            "password": settings.home_password.get_secret_value(),
            "project_name": settings.home_project_name,
            "user_domain_name": settings.home_user_domain_name,
            "project_domain_name": settings.home_project_domain_name,
            "verify": settings.home_verify,
        }
        self._session = make_session(self._auth, timeout=settings.site_timeout)
        self._cache: TTLCache[str, tuple[Principal, float]] = TTLCache(
            maxsize=10_000, ttl=max(settings.token_cache_seconds, 0.001))
        self._refused: TTLCache[str, str] = TTLCache(maxsize=10_000, ttl=REFUSED_TTL)
        self._lock = threading.Lock()
        admin_project = settings.admin_project_name
        self._admin_project = (admin_project, settings.admin_project_domain_name) if admin_project else None
        self._readers = frozenset(r.strip() for r in settings.reader_roles.split(",") if r.strip())

    def validate(self, token: str) -> Principal:
        return self.validate_until(token)[0]

    def validate_until(self, token: str) -> tuple[Principal, float]:
        """The token's principal and when the token expires (epoch seconds), as :meth:`validate`."""
        if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable():
            raise Unauthorized("the token is invalid or expired")
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        with self._lock:
            cached = self._cache.get(key)
            refused = self._refused.get(key)
        if cached is not None and cached[1] > now:
            return cached
        if refused is not None:
            raise Unauthorized(refused)
        try:
            principal, expires = self._validate_remote(token)
        except Unauthorized as exc:
            with self._lock:
                self._refused[key] = exc.detail
            raise
        if self._settings.token_cache_seconds > 0:
            with self._lock:
                self._cache[key] = (principal, expires)
        return principal, expires

    def _validate_remote(self, token: str) -> tuple[Principal, float]:
        # The home auth URL is the Keystone v3 root, so the validation URL is known without the catalog.
        root = self._settings.home_auth_url.rstrip("/")
        url = (root if root.endswith("/v3") else root + "/v3") + "/auth/tokens"
        try:
            response = self._session.get(url, raise_exc=False, headers={"X-Subject-Token": token})
        except ks_exc.ClientException as exc:
            raise Unavailable(f"cannot validate the token: home Keystone unreachable ({type(exc).__name__})") \
                from exc
        if response.status_code in (401, 404):
            raise Unauthorized("the token is invalid or expired")
        if response.status_code != 200:
            raise Unavailable(f"home Keystone answered {response.status_code} to a token validation")
        body = response.json()["token"]
        principal = principal_from_token(body, admin_role=self._settings.admin_role,
                                         admin_project=self._admin_project, reader_roles=self._readers)
        return principal, _expiry(body.get("expires_at"))


@dataclass(frozen=True)
class IssuedToken:
    """A project-scoped token the home Keystone issued for a user's password (never logged)."""

    token: str
    expires_at: datetime | None
    user_name: str | None
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...]


def password_token(settings: Settings, *, username: str, password: str, project: str, domain: str
                   ) -> IssuedToken:
    """Ask the home Keystone for a token scoped to ``project`` with a user's name and password.

    Why here: the dashboard signs people in with a password, and only the API's own module may build
    keystoneauth sessions (import-linter contract). keystoneauth sends the password in the body of
    ``POST /v3/auth/tokens`` and never logs that request; nothing here logs or keeps it either."""
    session = make_session({"auth_url": settings.home_auth_url, "username": username, "password": password,
                            "project_name": project, "user_domain_name": domain,
                            "project_domain_name": domain, "verify": settings.home_verify},
                           timeout=settings.site_timeout)
    try:
        got = session.auth.get_access(session)
    except (ks_exc.Unauthorized, ks_exc.NotFound, ks_exc.BadRequest) as exc:
        raise Unauthorized("the home Keystone refused these credentials: check the user name, password, "
                           "project and domain") from exc
    except ks_exc.ClientException as exc:
        raise Unavailable(f"cannot sign in: home Keystone unreachable or failing ({type(exc).__name__})") from exc
    if not got.project_scoped:
        raise Unauthorized("the home Keystone gave no project-scoped token for this project")
    return IssuedToken(token=got.auth_token, expires_at=got.expires, user_name=got.username,
                       project_id=got.project_id, project_name=got.project_name, roles=tuple(got.role_names))


def _expiry(text: Any) -> float:
    """A token's expiry as a timestamp (far away when Keystone did not say)."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")
