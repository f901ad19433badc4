"""Turn clouds.yaml entries into site registrations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_AUTH_KEYS = {
    "auth_url", "username", "user_id", "password", "application_credential_id",
    "application_credential_name", "application_credential_secret", "project_name", "project_id",
    "user_domain_name", "user_domain_id", "project_domain_name", "project_domain_id",
}


class CloudsYamlError(ValueError):
    """The file cannot be used; the message says why."""


def load_clouds(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CloudsYamlError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("clouds"), dict):
        raise CloudsYamlError(f"{path} has no 'clouds' mapping")
    return {str(k): v for k, v in document["clouds"].items() if isinstance(v, dict)}


def site_name(cloud: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", cloud).strip("-._") or "site"
    return name[:64]


def site_body(cloud: str, entry: dict[str, Any], *, labels: dict[str, str], group: str | None) -> dict[str, Any]:
    """The POST /v1/sites body for one clouds.yaml cloud."""
    raw_auth = entry.get("auth") or {}
    auth: dict[str, Any] = {k: v for k, v in raw_auth.items() if k in _AUTH_KEYS and v not in (None, "")}
    for domain_key in ("domain_name", "domain_id"):  # clouds.yaml shorthand for both domains
        if raw_auth.get(domain_key):
            for prefix in ("user_", "project_"):
                auth.setdefault(prefix + domain_key, raw_auth[domain_key])
    if entry.get("region_name"):
        auth["region_name"] = entry["region_name"]
    if entry.get("interface"):
        auth["interface"] = entry["interface"]
    if "verify" in entry:
        auth["verify"] = bool(entry["verify"])
    if entry.get("cacert"):
        auth["cacert"] = str(entry["cacert"])
    body: dict[str, Any] = {"name": site_name(cloud), "auth": auth, "labels": labels}
    if group:
        body["group"] = group
    return body
