"""Fixtures of the contract suite: the target sites, admin connections, throw-away tenants.

``SKYFLEET_CONTRACT_TARGET`` picks the target: ``sim`` (default, the in-process simulator)
or ``real`` (the sites from ``testbed/realstack``). Every test in this directory is marked
``contract`` automatically as well as explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import openstack.connection
import pytest

from skyfleet.drivers.openstack.pool import SitePool

# The helpers sit next to this file; make them importable whatever pytest's import mode
# (prepend or importlib) and whether or not tests/ is a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract_support import (
    BootKit,
    Site,
    Tenant,
    ed25519_public_key,
    load_target_sites,
    quiet,
    skyfleet_auth,
    tenant,
    unique,
)


def pytest_configure(config: pytest.Config) -> None:
    # openstacksdk's own deprecation chatter says nothing about the sites.
    for category in ("DeprecationWarning", "PendingDeprecationWarning"):
        config.addinivalue_line("filterwarnings", f"ignore::{category}:openstack.*")


#: Files here that need no site and are not contract tests (they check the suite itself).
NOT_CONTRACT = ("test_driver_coverage.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here) and os.path.basename(str(item.fspath)) not in NOT_CONTRACT:
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session")
def target() -> str:
    """Which kind of site the suite runs against: ``sim`` or ``real``."""
    return os.environ.get("SKYFLEET_CONTRACT_TARGET", "sim")


@pytest.fixture(scope="session")
def sites(target: str) -> Iterator[list[Site]]:
    """All sites of the target (two), started for the session when simulated."""
    found, stop = load_target_sites(target)
    try:
        yield found
    finally:
        stop()


@pytest.fixture(scope="session")
def site(sites: list[Site]) -> Site:
    """The first site; the heavy scenarios run there only."""
    return sites[0]


@pytest.fixture(scope="session")
def admin(site: Site) -> openstack.connection.Connection:
    """Admin connection (project ``admin``) to the first site."""
    return site.admin


@pytest.fixture(scope="module")
def pool() -> SitePool:
    return SitePool()


@pytest.fixture
def conn(site: Site, pool: SitePool) -> openstack.connection.Connection:
    """The admin connection Skyfleet itself would build for the site (through its pool)."""
    return pool.connection(skyfleet_auth(site), timeout=60)


@pytest.fixture
def project(site: Site) -> Iterator[Tenant]:
    """A fresh project with a member user on the first site, deleted afterwards."""
    with tenant(site) as t:
        yield t


@pytest.fixture(scope="module")
def boot_kit(site: Site) -> Iterator[BootKit]:
    """A tenant with a private image and a network, and a tiny public flavor (admin).

    Module scoped so that the server scenarios share one image upload; each test still
    creates and deletes its own servers.
    """
    admin = site.admin
    flavor = admin.compute.create_flavor(name=unique("tiny"), ram=64, vcpus=1, disk=1, is_public=True)
    try:
        with tenant(site) as t:
            conn = t.conn
            data = os.urandom(64 * 1024)
            image = conn.image.create_image(
                name=unique("image"),
                data=data,
                disk_format="raw",
                container_format="bare",
                allow_duplicates=True,
                wait=True,
                timeout=120,
            )
            net_name = unique("net")
            net = conn.network.create_network(name=net_name)
            sub = conn.network.create_subnet(
                network_id=net.id, name=unique("subnet"), ip_version=4, cidr="10.77.0.0/24"
            )
            try:
                yield BootKit(t, flavor.id, image.id, net.id, net_name, sub.id)
            finally:
                for port in conn.network.ports(network_id=net.id):
                    quiet(conn.network.delete_port, port)
                quiet(conn.network.delete_network, net)
                quiet(conn.image.delete_image, image)
    finally:
        quiet(admin.compute.delete_flavor, flavor)


@pytest.fixture
def ssh_public_key() -> tuple[str, str]:
    """(public key in OpenSSH format, expected MD5 fingerprint)."""
    return ed25519_public_key()
