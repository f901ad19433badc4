"""Contract: the inventory reader (``skyfleet.drivers.openstack.inventory``) and the paging rule
(``paging``) against the sites.

Listings asked at a small page size, with more items than one page holds, across all projects:
every item comes back once, by following the next page each service names (Nova, Cinder and
Neutron ``<key>_links``, Glance ``next``). The kinds without paging are read whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from contract_support import Site, Tenant, quiet, tenant, unique, wait_for

from skyfleet.drivers.openstack.inventory import KINDS, Reader, read_live
from skyfleet.drivers.openstack.paging import next_params

pytestmark = pytest.mark.contract

PAGE = 3
EACH = 7  # more than two pages


@dataclass
class Made:
    tenant: Tenant
    ids: dict[str, set[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def made(site: Site) -> Iterator[Made]:
    """EACH networks, subnets, ports, security groups, images and volumes of a member project, and
    EACH private flavors (admin)."""
    with tenant(site) as t:
        conn, admin = t.conn, site.admin
        out = Made(t, {kind: set() for kind in ("networks", "subnets", "ports", "security_groups", "images",
                                                 "volumes", "flavors")})
        try:
            for n in range(EACH):
                net = conn.network.create_network(name=unique("page"))
                out.ids["networks"].add(net.id)
                out.ids["subnets"].add(conn.network.create_subnet(network_id=net.id, ip_version=4,
                                                                  cidr=f"10.66.{n}.0/24").id)
                out.ids["ports"].add(conn.network.create_port(network_id=net.id).id)
                out.ids["security_groups"].add(conn.network.create_security_group(name=unique("page")).id)
                out.ids["images"].add(conn.image.create_image(name=unique("page"), disk_format="raw",
                                                              container_format="bare", allow_duplicates=True).id)
                out.ids["volumes"].add(conn.block_storage.create_volume(name=unique("page"), size=1).id)
                out.ids["flavors"].add(str(admin.compute.create_flavor(name=unique("page"), ram=64, vcpus=1, disk=1,
                                                                       is_public=False).id))
            yield out
        finally:
            for vid in out.ids.get("volumes", ()):
                quiet(conn.block_storage.delete_volume, vid)
            for iid in out.ids.get("images", ()):
                quiet(conn.image.delete_image, iid)
            for pid in out.ids.get("ports", ()):
                quiet(conn.network.delete_port, pid)
            for sid in out.ids.get("security_groups", ()):
                quiet(conn.network.delete_security_group, sid)
            for nid in out.ids.get("networks", ()):
                quiet(conn.network.delete_network, nid)
            for fid in out.ids.get("flavors", ()):
                quiet(admin.compute.delete_flavor, fid)


@pytest.mark.covers("inventory.Reader.full")
@pytest.mark.parametrize("kind", ["networks", "subnets", "ports", "security_groups", "images", "volumes",
                                  "flavors"])
def test_small_pages_list_every_item_once(site: Site, made: Made, kind: str) -> None:
    if kind == "volumes":
        wait_for(lambda: all(site.admin.block_storage.get_volume(v).status != "creating"
                             for v in made.ids["volumes"]), timeout=120)
    reader = Reader(site.admin, page=PAGE)
    records = reader.full(kind)
    ids = [r.remote_id for r in records]
    assert len(ids) == len(set(ids)), f"{kind}: an item came back twice"
    assert made.ids[kind] <= set(ids), f"{kind}: {sorted(made.ids[kind] - set(ids))} missing"
    assert reader.calls >= math.ceil(len(ids) / PAGE), (kind, reader.calls, len(ids))
    if kind != "flavors":
        mine = [r for r in records if r.remote_id in made.ids[kind]]
        assert {r.project_id for r in mine} == {made.tenant.project_id}, kind


@pytest.mark.covers("paging.next_params")
def test_next_page_as_each_service_names_it(site: Site, made: Made) -> None:
    admin = site.admin
    for adapter, path, key in ((admin.network, "/networks", "networks"), (admin.image, "/images", "images"),
                               (admin.block_storage, "/volumes", "volumes"),
                               (admin.compute, "/flavors", "flavors")):
        params = {"limit": 2, **({"all_tenants": "1"} if key == "volumes" else {}),
                  **({"is_public": "None"} if key == "flavors" else {})}
        body = adapter.get(path, params=params).json()
        assert len(body[key]) == 2
        following = next_params(body, key, params)
        assert following is not None and following["marker"] == body[key][-1]["id"], (key, body)
        assert {k: str(v) for k, v in following.items() if k != "marker"} == \
            {k: str(v) for k, v in params.items()}, key
        second = adapter.get(path, params=following).json()[key]
        assert not {i["id"] for i in second} & {i["id"] for i in body[key]}, key
    # The last page names no next one.
    body = admin.network.get("/networks", params={"limit": 1000}).json()
    assert next_params(body, "networks", {"limit": 1000}) is None


@pytest.mark.covers("inventory.read_live")
def test_unpaged_kinds_read_whole(site: Site) -> None:
    zones = read_live(site.admin, "availability_zones")
    assert "nova" in {z.name for z in zones} and all(z.status == "available" for z in zones)
    hypervisors = read_live(site.admin, "hypervisors")
    assert hypervisors and all(h.data["vcpus"] > 0 and h.data["memory_mb"] > 0 for h in hypervisors)
    assert isinstance(read_live(site.admin, "keypairs"), list)
    assert {"servers", "volumes", "routers", "floating_ips"} <= set(KINDS)
    for kind in ("routers", "floating_ips"):
        assert isinstance(read_live(site.admin, kind), list)
