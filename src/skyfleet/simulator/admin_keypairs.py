"""Admin routes that put keypairs into sites and take them out behind the API's back.

Why it exists: a drift benchmark needs a thousand sites that already hold a hundred keypairs each (seeded
in one request, not 100,000 API calls), and then a keypair deleted on one site the way an operator with
the site's own tools would, with nothing going through Skyfleet.

    POST   /_sim/keypairs                    {"names": [...], "public_key": "...", "user": "admin"}
    DELETE /_sim/sites/{site}/keypairs/{name}   (every user's keypair of that name; 404 when none)
"""

from __future__ import annotations

import time
from typing import Any

from .nova_flavors import fingerprint
from .state import Fleet, Site


def seed(fleet: Fleet, body: Any) -> dict[str, Any]:
    """Give ``user`` (by name, default ``admin``) of every site the keypairs ``names``; returns each site's
    user id. A keypair already there is replaced."""
    if not isinstance(body, dict) or not isinstance(body.get("names"), list) or not body["names"]:
        raise ValueError("names (a non-empty list) and public_key are required")
    names = [str(n) for n in body["names"]]
    public_key = str(body.get("public_key") or "")
    fp = fingerprint(public_key)
    if fp is None:
        raise ValueError("public_key is not an OpenSSH public key")
    user = str(body.get("user") or "admin")
    owners = {}
    for site in fleet.sites.values():
        uid = next((u["id"] for u in site.keystone.users.values() if u["name"] == user), None)
        if uid is None:
            raise ValueError(f"site {site.name} has no user {user!r}")
        keypairs = site.nova.keypairs
        for name in names:
            keypairs[(uid, name)] = {"name": name, "public_key": public_key, "fingerprint": fp, "type": "ssh",
                                     "user_id": uid, "id": len(keypairs) + 1, "_created": time.time()}
        owners[site.name] = uid
    return {"keypairs": len(names), "sites": owners}


def remove(site: Site, name: str) -> int:
    """Delete every user's keypair ``name`` on ``site``; how many went (KeyError when none)."""
    keys = [key for key in site.nova.keypairs if key[1] == name]
    if not keys:
        raise KeyError(f"site {site.name} holds no keypair {name!r}")
    for key in keys:
        del site.nova.keypairs[key]
    return len(keys)
