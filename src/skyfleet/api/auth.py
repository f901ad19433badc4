"""Who is calling: Keystone tokens validated against the home Keystone, or noauth for local use.

Validations are cached for ``token_cache_seconds`` under a hash of the token (the token itself is
never kept as a key nor logged). Role ``admin`` makes a fleet admin; any role on project P makes a
tenant of P.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from cachetools import TTLCache
from keystoneauth1 import exceptions as ks_exc

from skyfleet.config import Settings
from skyfleet.drivers.openstack.session import make_session
from skyfleet.errors import Forbidden, Unauthorized, Unavailable
from skyfleet.logs import SECRETS


@dataclass(frozen=True)
class Principal:
    user_id: str
    user_name: str | None
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...] = field(default_factory=tuple)
    is_admin: bool = False


NOAUTH_ADMIN = Principal(user_id="noauth", user_name="noauth", project_id=None, project_name=None,
                         roles=("admin",), is_admin=True)


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(
            f"{action} is reserved to fleet admins (role 'admin'); your token has roles "
            f"{list(principal.roles)} on project {principal.project_name or principal.project_id}"
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
        self._cache: TTLCache[str, Principal] = TTLCache(
            maxsize=10_000, ttl=max(settings.token_cache_seconds, 0.001))
        self._lock = threading.Lock()

    def validate(self, token: str) -> Principal:
        SECRETS.add(token)
        key = hashlib.sha256(token.encode()).hexdigest()
        if self._settings.token_cache_seconds > 0:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
        principal = self._validate_remote(token)
        if self._settings.token_cache_seconds > 0:
            with self._lock:
                self._cache[key] = principal
        return principal

    def _validate_remote(self, token: str) -> Principal:
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
        roles = tuple(sorted(r["name"] for r in body.get("roles", [])))
        project = body.get("project") or {}
        user = body.get("user") or {}
        return Principal(
            user_id=user.get("id", ""), user_name=user.get("name"), project_id=project.get("id"),
            project_name=project.get("name"), roles=roles, is_admin=self._settings.admin_role in roles,
        )
