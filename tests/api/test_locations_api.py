"""GET /v1/locations: the sites a caller may boot in, with zones, room, its own quota headroom, and
the flavors and images it can use there; two tenants each see only their own images and quota."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from tests.placement_support import SMALL, add_site, declare_image, flavor, image, set_quota, zone
from tests.support import TENANT

OTHER = Principal(user_id="o", user_name="olga", project_id="p2", project_name="p2", roles=("member",))
GOLD = {"id": "f9", "name": "gold", "vcpus": 8, "ram": 16384, "disk": 80}


def seed(runtime: Runtime) -> None:
    with transaction(runtime.factory) as s:
        paris = add_site(s, "paris", labels={"tier": "core"}, group="eu", location=(48.86, 2.35),
                         zones=[zone("az1"), zone("az2", available=False)],
                         flavors=[flavor(SMALL), flavor(GOLD, public=False, projects=("p2",))],
                         images=[image("pub", "cirros"), image("i1", "p1-image", owner="p1", visibility="private"),
                                 image("i2", "p2-image", owner="p2", visibility="private")])
        add_site(s, "rome", availability="degraded", hypervisors=[], labels={"tier": "edge"}, group="eu")
        add_site(s, "lyon", availability="offline")
        add_site(s, "old", managed=False)
        declare_image(s, "golden", project_id="p1", mode="lazy")
        set_quota(s, "p1", limits={"instances": 10, "cores": 10, "ram": 51200},
                  sites={paris: ({"instances": 1, "cores": 4, "ram": 2048}, {"instances": 5, "cores": -1})})


def locations(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/locations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_tenant_sees_its_own_images_and_quota(client: TestClient, runtime: Runtime,
                                                   as_user: Callable[[Principal], None]) -> None:
    seed(runtime)
    as_user(TENANT)
    mine = locations(client)
    assert [loc["name"] for loc in mine["locations"]] == ["paris", "rome"]  # offline and unmanaged hidden
    paris = mine["locations"][0]
    assert (paris["group"], paris["labels"], paris["latitude"], paris["availability"]) == \
        ("eu", {"tier": "core"}, 48.86, "online")
    assert paris["availability_zones"] == ["az1"]
    assert paris["free"] == {"vcpus": 16, "ram_mb": 32768, "disk_gb": 400}
    assert paris["quota_global"] == {"instances": 9, "cores": 6, "ram": 49152}
    assert paris["quota_headroom"] == {"instances": 4, "cores": 6, "ram": 49152}  # the site's 5 instances
    assert [f["name"] for f in paris["flavors"]] == ["m1.small"]
    assert [(i["name"], i["image"], i["id"]) for i in paris["images"]] == [
        ("cirros", "present", "pub"), ("golden", "copy", None), ("p1-image", "present", "i1")]
    rome = mine["locations"][1]
    assert rome["free"] is None and rome["availability"] == "degraded"

    as_user(OTHER)
    theirs = locations(client)["locations"][0]
    assert [(i["name"], i["image"]) for i in theirs["images"]] == [("cirros", "present"), ("p2-image", "present")]
    assert [f["name"] for f in theirs["flavors"]] == ["m1.small", "gold"]
    assert theirs["quota_global"] == {"instances": None, "cores": None, "ram": None}
    assert theirs["quota_headroom"] == {"instances": None, "cores": None, "ram": None}


def test_fleet_admins_see_every_site_page_by_page(client: TestClient, runtime: Runtime) -> None:
    seed(runtime)
    first = locations(client, limit=2)
    assert [loc["name"] for loc in first["locations"]] == ["lyon", "old"] and first["next_marker"] == "old"
    rest = locations(client, limit=2, marker=first["next_marker"])
    assert [loc["name"] for loc in rest["locations"]] == ["paris", "rome"] and rest["next_marker"] is None
    assert [loc["name"] for loc in locations(client, selector="tier=edge")["locations"]] == ["rome"]
    assert [loc["name"] for loc in locations(client, group="eu")["locations"]] == ["paris", "rome"]


def test_bad_input_is_a_4xx_with_the_reason(client: TestClient, runtime: Runtime) -> None:
    seed(runtime)
    bad = client.get("/v1/locations", params={"selector": "tier=a b"})
    assert bad.status_code == 400 and "selector" in bad.json()["detail"]
    unknown = client.get("/v1/locations", params={"marker": "atlantis"})
    assert unknown.status_code == 404 and "atlantis" in unknown.json()["detail"]
    for params in ({"limit": 0}, {"limit": "x"}, {"group": "g" * 65}):
        assert client.get("/v1/locations", params=params).status_code in (400, 422)
