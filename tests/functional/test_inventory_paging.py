"""Listings on a site whose API caps pages at 50 (simulator fault ``max_page``), with more than 120
items of every kind: the inventory reader, the quota change hints and the flavor look-up of sync see
every item, because they follow the pages the service names instead of stopping at a short page.
Also: a Cinder older than microversion 3.60 (406) gets its volumes read in full by the feed."""

from __future__ import annotations

import io
from collections.abc import Iterator

import openstack
import pytest

from skyfleet.drivers.openstack import quota_batch, syncapi
from skyfleet.drivers.openstack.inventory import KINDS, Reader
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.quota import Endpoint
from skyfleet.simulator import Simulator

SITE = "site-0001"
CAP = 50
COUNT = 121
PAGED_KINDS = ("servers", "volumes", "images", "networks", "subnets", "ports", "routers", "floating_ips",
               "security_groups", "flavors")


@pytest.fixture(scope="module")
def crowded() -> Iterator[tuple[Simulator, dict[str, int]]]:
    """A simulated site with COUNT (or more) resources of every paged kind, capped at CAP a page."""
    with Simulator(1) as sim:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(SITE))
        pid = conn.current_project_id
        conn.compute.update_quota_set(pid, instances=-1, cores=-1, ram=-1)
        conn.block_storage.update_quota_set(pid, volumes=-1, gigabytes=-1)
        conn.network.update_quota(pid, networks=-1, subnets=-1, ports=-1, routers=-1, floating_ips=-1,
                                  security_groups=-1)
        public = conn.network.create_network(name="public", is_router_external=True)
        conn.network.create_subnet(network_id=public.id, cidr="172.24.0.0/16", ip_version=4)
        image = conn.image.create_image(name="boot", data=io.BytesIO(b"x" * 64), disk_format="raw",
                                        container_format="bare", allow_duplicates=True)
        for n in range(COUNT):
            net = conn.network.create_network(name=f"net-{n}")
            conn.network.create_subnet(network_id=net.id, cidr=f"10.{n // 200}.{n % 200}.0/24", ip_version=4)
            conn.network.create_router(name=f"router-{n}")
            conn.network.create_ip(floating_network_id=public.id)
            conn.network.create_security_group(name=f"sg-{n}")
            conn.compute.create_flavor(name=f"flavor-{n}", ram=64, vcpus=1, disk=1)
            conn.image.create_image(name=f"image-{n}", data=io.BytesIO(b"y" * 16), disk_format="raw",
                                    container_format="bare", allow_duplicates=True)
            conn.block_storage.create_volume(size=1, name=f"volume-{n}")
            conn.compute.create_server(name=f"server-{n}", image_id=image.id, flavor_id="1",
                                       networks=[{"uuid": net.id}])
        state = sim.state(SITE)
        expected = {"servers": len(state.nova.servers), "volumes": len(state.cinder.volumes),
                    "images": len(state.glance.images), "networks": len(state.neutron.networks),
                    "subnets": len(state.neutron.subnets), "ports": len(state.neutron.ports),
                    "routers": len(state.neutron.routers), "floating_ips": len(state.neutron.floatingips),
                    "security_groups": len(state.neutron.security_groups), "flavors": len(state.nova.flavors)}
        sim.set_faults(SITE, max_page=CAP)
        yield sim, expected


def test_the_cap_is_real(crowded: tuple[Simulator, dict[str, int]]) -> None:
    sim, expected = crowded
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(SITE))
    assert all(count > 120 for count in expected.values()), expected
    for path, key in (("/servers/detail?all_tenants=1&limit=1000", "servers"), ("/flavors/detail", "flavors")):
        body = conn.compute.get(path).json()
        assert len(body[key]) == CAP and body[f"{key}_links"][0]["rel"] == "next"
    body = conn.block_storage.get("/volumes/detail?all_tenants=1&limit=1000").json()
    assert len(body["volumes"]) == CAP and "all_tenants=1" in body["volumes_links"][0]["href"]
    assert len(conn.network.get("/networks").json()["networks"]) == CAP
    assert len(conn.image.get("/images?limit=1000").json()["images"]) == CAP


def test_inventory_reader_lists_every_item(crowded: tuple[Simulator, dict[str, int]]) -> None:
    sim, expected = crowded
    reader = Reader(SitePool().connection({**sim.cloud(SITE)["auth"], "region_name": "RegionOne"}, timeout=10))
    for kind in PAGED_KINDS:
        records = reader.full(kind)
        assert len({r.remote_id for r in records}) == expected[kind], kind
    assert set(PAGED_KINDS) <= set(KINDS)
    changed = reader.changed_servers("1970-01-01T00:00:00Z")
    assert len(changed) == expected["servers"]
    volumes, ids = reader.changed_volumes("1970-01-01T00:00:00Z")
    assert len(volumes) == len(ids) == expected["volumes"]


def test_quota_hints_and_flavor_lookup_see_every_page(crowded: tuple[Simulator, dict[str, int]]) -> None:
    sim, expected = crowded
    auth = sim.cloud(SITE)["auth"]
    pool = SitePool()
    conn = pool.connection({**auth, "region_name": "RegionOne"}, timeout=10)
    pid = conn.current_project_id
    hints = quota_batch.change_hints(pool.session({**auth, "region_name": "RegionOne"}, timeout=10),
                                     Endpoint(region="RegionOne"),
                                     {"compute": "1970-01-01T00:00:00Z", "volume": "1970-01-01T00:00:00Z",
                                      "network": None})
    assert hints.changed["compute"] == {pid} and hints.changed["volume"] == {pid}
    assert hints.network_counted
    found = syncapi.find_flavor(conn, f"flavor-{COUNT - 1}")
    assert found is not None and found["name"] == f"flavor-{COUNT - 1}"
    assert expected["flavors"] > CAP


def test_site_older_than_3_60_gets_its_volumes_listed_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cinder below 3.60 answers 406 to the feed's microversion: every volume is read instead."""
    from skyfleet.simulator import cinder

    monkeypatch.setattr(cinder, "MAX_VERSION", (3, 50))
    with Simulator(1) as sim:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(SITE))
        made = {conn.block_storage.create_volume(size=1, name=f"old-{n}").id for n in range(3)}
        reader = Reader(conn)
        changed, ids = reader.changed_volumes("2999-01-01T00:00:00Z")  # a mark no volume passes
        assert {r.remote_id for r in changed} == ids == made
        assert reader.calls == 2  # the refused feed, then one full listing
