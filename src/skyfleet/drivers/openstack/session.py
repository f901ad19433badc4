"""Build a keystoneauth session for a site from its stored auth document."""

from __future__ import annotations

from typing import Any

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.drivers.openstack.cabundle import bundle_path

_PASSWORD_KEYS = (
    "auth_url", "username", "user_id", "password", "project_name", "project_id", "user_domain_name",
    "user_domain_id", "project_domain_name", "project_domain_id",
)
_APP_CRED_KEYS = (
    "auth_url", "application_credential_id", "application_credential_name",
    "application_credential_secret", "username", "user_id", "user_domain_name", "user_domain_id",
)


def _verify(auth: dict[str, Any]) -> bool | str:
    if not auth.get("verify", True):
        return False
    cacert = auth.get("cacert")
    if not cacert:
        return True
    if "-----BEGIN" not in cacert:
        return str(cacert)
    return bundle_path(cacert)  # keystoneauth wants a path: a private file of this process


def make_auth(auth: dict[str, Any]) -> v3.Auth:
    if auth.get("application_credential_secret"):
        return v3.ApplicationCredential(**{k: auth[k] for k in _APP_CRED_KEYS if auth.get(k)})
    return v3.Password(**{k: auth[k] for k in _PASSWORD_KEYS if auth.get(k)})


def make_session(auth: dict[str, Any], *, timeout: float) -> ks_session.Session:
    """A fresh session (its own token and discovery cache) for one site."""
    return ks_session.Session(auth=make_auth(auth), verify=_verify(auth), timeout=timeout)
