"""clouds.yaml entries for simulated sites.

Why it exists: the CLI, the Python API and the admin endpoint all hand out the same openstacksdk
configuration for a site, so it is built in exactly one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .state import ADMIN_PASSWORD, DEMO_PASSWORD, Fleet

USERS = {"admin": ("admin", ADMIN_PASSWORD, "admin"), "demo": ("demo", DEMO_PASSWORD, "demo")}


def identity_url(fleet: Fleet, site: str) -> str:
    """Keystone's versioned public URL, as real clouds.yaml files carry it (the root still answers 300)."""
    return f"{fleet.base_url}/{site}/identity/v3"


def cloud(fleet: Fleet, site: str, *, user: str = "admin") -> dict[str, Any]:
    entry = fleet.get(site)
    if user not in USERS:
        raise ValueError(f"unknown simulated user {user!r}; known: {', '.join(USERS)}")
    username, password, project = USERS[user]
    return {
        "auth": {
            "auth_url": identity_url(fleet, entry.keystone_leader.name),
            "username": username,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": entry.region,
        "identity_api_version": 3,
        "interface": "public",
    }


def clouds_yaml(fleet: Fleet, *, user: str = "admin") -> dict[str, Any]:
    return {"clouds": {name: cloud(fleet, name, user=user) for name in fleet.sites}}


def write_clouds_yaml(fleet: Fleet, path: str | Path, *, user: str = "admin") -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(clouds_yaml(fleet, user=user), sort_keys=False))
    tmp.replace(target)
