"""Helpers shared by the contract suite: targets, connections, throw-away tenants.

The contract suite runs the same scenarios against two kinds of target:

* ``sim`` (default): Skyfleet's in-process simulator (``skyfleet.simulator``), two sites.
* ``real``: real OpenStack sites brought up by ``testbed/realstack`` (clouds ``site1`` and
  ``site2`` in ``OS_CLIENT_CONFIG_FILE``, default ``/opt/realstack/clouds.yaml``).

Everything here talks to a site only through openstacksdk/keystoneauth, as Skyfleet does.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openstack
import openstack.connection
import openstack.exceptions
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

CloudDict = dict[str, Any]
T = TypeVar("T")

#: Prefix of every resource the suite creates, so leftovers are easy to spot.
PREFIX = "skyfleet-ct"
ADMIN_ROLE = "admin"
MEMBER_ROLE = "member"


def unique(kind: str) -> str:
    """Return a unique resource name such as ``skyfleet-ct-net-1a2b3c4d``."""
    return f"{PREFIX}-{kind}-{uuid.uuid4().hex[:8]}"


def connect(cloud: CloudDict) -> openstack.connection.Connection:
    """Connect from a clouds.yaml entry, ignoring any clouds.yaml or OS_* variables.

    ``load_yaml_config=False`` matters: with it unset, openstacksdk silently prefers the
    credentials of a cloud found through ``OS_CLIENT_CONFIG_FILE``.
    """
    return openstack.connect(load_yaml_config=False, load_envvars=False, **copy.deepcopy(cloud))


def retry(fn: Callable[[], T], *, attempts: int = 10, delay: float = 1.0) -> T:
    """Call ``fn`` until it stops raising an SDK/HTTP error (for just-created users)."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def wait_for(predicate: Callable[[], bool], *, timeout: float = 120.0, interval: float = 1.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def quiet(fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run a clean-up step ``fn(*args, **kwargs)``; a resource that is already gone is fine."""
    with suppress(openstack.exceptions.NotFoundException):
        fn(*args, **kwargs)


@dataclass
class Site:
    """One target site: its name, its admin clouds.yaml entry and an admin connection."""

    name: str
    cloud: CloudDict
    _admin: openstack.connection.Connection | None = field(default=None, repr=False)

    @property
    def region(self) -> str:
        return str(self.cloud.get("region_name") or "RegionOne")

    @property
    def admin(self) -> openstack.connection.Connection:
        if self._admin is None:
            self._admin = connect(self.cloud)
        return self._admin

    def cloud_as(self, username: str, password: str, project_name: str) -> CloudDict:
        """This site's clouds.yaml entry with other credentials (same auth URL, domains)."""
        cloud = copy.deepcopy(self.cloud)
        cloud["auth"].update(username=username, password=password, project_name=project_name)
        return cloud


def skyfleet_auth(site: Site, cloud: CloudDict | None = None) -> dict[str, Any]:
    """A site credential as Skyfleet stores it: the clouds.yaml auth plus region and interface."""
    entry = cloud or site.cloud
    return {**copy.deepcopy(entry["auth"]), "region_name": site.region, "interface": entry.get("interface", "public")}


@dataclass
class Tenant:
    """A throw-away project with one member user, and a connection as that user."""

    site: Site
    project_id: str
    project_name: str
    user_id: str
    username: str
    password: str
    conn: openstack.connection.Connection


@contextmanager
def tenant(site: Site, *, role: str = MEMBER_ROLE) -> Iterator[Tenant]:
    """Create a project and a user holding ``role`` on it; delete both afterwards."""
    idn = site.admin.identity
    project = idn.create_project(name=unique("project"), domain_id="default", description="contract")
    password = uuid.uuid4().hex
    user = idn.create_user(name=unique("user"), password=password, domain_id="default", default_project_id=project.id)
    try:
        role_obj = idn.find_role(role, ignore_missing=False)
        idn.assign_project_role_to_user(project, user, role_obj)
        cloud = site.cloud_as(user.name, password, project.name)

        def _login() -> openstack.connection.Connection:
            conn = connect(cloud)
            conn.identity.get_token()
            return conn

        conn = retry(_login)
        yield Tenant(site, project.id, project.name, user.id, user.name, password, conn)
    finally:
        quiet(idn.delete_user, user)
        quiet(idn.delete_project, project)


def load_target_sites(target: str) -> tuple[list[Site], Callable[[], None]]:
    """Start (sim) or find (real) the sites of ``target``; return them and a stop function."""
    if target == "sim":
        from skyfleet.simulator import Simulator

        sim = Simulator(sites=2)
        sim.start()
        names = ["site-0001", "site-0002"]
        return [Site(n, sim.cloud(n)) for n in names], sim.stop
    if target == "real":
        path = os.environ.get("OS_CLIENT_CONFIG_FILE", "/opt/realstack/clouds.yaml")
        with open(path, encoding="utf-8") as fh:
            clouds = (yaml.safe_load(fh) or {}).get("clouds", {})
        names = os.environ.get("SKYFLEET_CONTRACT_CLOUDS", "site1,site2").split(",")
        missing = [n for n in names if n not in clouds]
        if missing:
            raise RuntimeError(f"clouds {missing} not in {path}; run testbed/realstack/up.sh")
        return [Site(n, clouds[n]) for n in names], lambda: None
    raise RuntimeError(f"SKYFLEET_CONTRACT_TARGET must be 'sim' or 'real', not {target!r}")


@dataclass(frozen=True)
class BootKit:
    """What a server boot needs: a tenant, a tiny flavor, an image and a network."""

    tenant: Tenant
    flavor_id: str
    image_id: str
    network_id: str
    network_name: str
    subnet_id: str


def ed25519_public_key() -> tuple[str, str]:
    """A fresh OpenSSH ed25519 public key and its MD5 fingerprint (``aa:bb:...``)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    raw = base64.b64decode(text.split()[1])
    digest = hashlib.md5(raw).hexdigest()
    return text, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
