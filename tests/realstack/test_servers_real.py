"""Boots through Skyfleet on the real sites, as a tenant: a server on site2, AZ ``nova``, goes ACTIVE in
site2's Nova in the tenant's project; its image, declared ``lazy`` on site1, is copied to site2 first.
Deleting it through Skyfleet removes it from site2. Waits as a user waits (workers run; the test polls)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.realstack.support import connect, tidy, token, wait_for
from tests.realstack.test_images_real import api, as_tenant, tenant, tenant_headers  # noqa: F401 (fixtures)

pytestmark = pytest.mark.realstack


@pytest.mark.timeout(900)
def test_a_tenant_boots_on_site2_from_a_lazy_image(api: TestClient, clouds: dict[str, Any],  # noqa: F811
                                                   tenant: dict[str, Any]) -> None:  # noqa: F811
    tag = tenant["tag"]
    headers = tenant_headers(clouds, tenant)
    site1, site2 = as_tenant(clouds, "site1", tenant), as_tenant(clouds, "site2", tenant)
    source = site1.image.create_image(name=f"sf-boot-{tag}", data=os.urandom(1 << 20), disk_format="raw",
                                      container_format="bare", allow_duplicates=True, wait=True)
    admin2 = connect(clouds["site2"]["auth"])
    flavor = admin2.compute.create_flavor(name=f"sf-boot-{tag}", ram=64, vcpus=1, disk=1, is_public=True)
    net = site2.network.create_network(name=f"sf-boot-net-{tag}")
    site2.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.79.0.0/24")
    server_id = None
    try:
        assert api.post("/v1/images", headers=headers, json={
            "name": f"sf-boot-{tag}", "source": {"site": "site1", "image_id": source.id},
            "mode": "lazy"}).status_code == 202
        admin = {"X-Auth-Token": token(clouds["site1"]["auth"])}  # the flavor and network are new: read site2 now
        assert api.post("/v1/inventory/refresh", params={"full": "true"}, headers=admin).status_code == 202
        assert wait_for(lambda: any(i["site"] == "site2" for i in api.get(
            "/v1/inventory/flavors", params={"name": f"sf-boot-{tag}"}, headers=admin).json()["items"]), 300)
        made = api.post("/v1/servers", headers=headers, json={
            "name": f"sf-vm-{tag}", "flavor": f"sf-boot-{tag}", "image": f"sf-boot-{tag}",
            "networks": [f"sf-boot-net-{tag}"], "placement": {"site": "site2", "availability_zone": "nova"}})
        assert made.status_code == 202, made.text
        server_id = made.json()["servers"][0]["id"]
        assert wait_for(lambda: api.get(f"/v1/servers/{server_id}", headers=headers).json()["status"]
                        in ("active", "failed"), 600)
        shown = api.get(f"/v1/servers/{server_id}", headers=headers).json()
        assert (shown["status"], shown["site"], shown["availability_zone"]) == ("active", "site2", "nova"), shown
        remote = site2.compute.get_server(shown["remote_id"])  # the tenant sees it as its own
        assert remote.status == "ACTIVE" and remote.project_id == site2.current_project_id
        [copy] = list(site2.image.images(name=f"sf-boot-{tag}"))
        assert remote.image["id"] == copy.id and copy.checksum == site1.image.get_image(source.id).checksum
        assert api.delete(f"/v1/servers/{server_id}", headers=headers).status_code == 202
        assert wait_for(lambda: api.get(f"/v1/servers/{server_id}", headers=headers).json()["status"] == "deleted",
                        300)
        assert wait_for(lambda: site2.compute.find_server(remote.id) is None, 300)
        server_id = None
    finally:
        if server_id is not None:
            for server in site2.compute.servers(name=f"sf-vm-{tag}"):
                site2.compute.delete_server(server, ignore_missing=True)
                site2.compute.wait_for_delete(server, wait=300)
        api.delete(f"/v1/images/sf-boot-{tag}", headers=headers)
        wait_for(lambda: api.get(f"/v1/images/sf-boot-{tag}", headers=headers).status_code == 404, 120)
        for conn in (site1, site2):
            for image in conn.image.images(name=f"sf-boot-{tag}"):
                tidy(conn.image.delete_image, image, ignore_missing=True)
        for port in site2.network.ports(network_id=net.id):
            site2.network.delete_port(port, ignore_missing=True)
        site2.network.delete_network(net, ignore_missing=True)
        admin2.compute.delete_flavor(flavor, ignore_missing=True)


@pytest.mark.timeout(900)
def test_a_refusing_first_choice_spills_over_and_the_refusal_is_recorded(
        api: TestClient, clouds: dict[str, Any], tenant: dict[str, Any]) -> None:  # noqa: F811
    """Weighted by a cost label, site1 ranks first; the tenant's cores quota there is 0, so site1's Nova
    refuses, the server is deleted there if made, and the boot lands on site2 (the next by cost)."""
    tag = tenant["tag"]
    headers = tenant_headers(clouds, tenant)
    admin = {"X-Auth-Token": token(clouds["site1"]["auth"])}
    conns = {site: as_tenant(clouds, site, tenant) for site in ("site1", "site2", "site3")}
    admins = {site: connect(clouds[site]["auth"]) for site in ("site1", "site2")}
    for site, cost in (("site1", "1"), ("site2", "2"), ("site3", "3")):
        assert api.patch(f"/v1/sites/{site}", headers=admin, json={"labels": {"cost": cost}}).status_code == 200
    source = conns["site1"].image.create_image(name=f"sf-spill-{tag}", data=os.urandom(1 << 20), disk_format="raw",
                                               container_format="bare", allow_duplicates=True, wait=True)
    flavors = {site: admins[site].compute.create_flavor(name=f"sf-spill-{tag}", ram=64, vcpus=1, disk=1,
                                                        is_public=True) for site in admins}
    admins["site1"].compute.update_quota_set(conns["site1"].current_project_id, cores=0)  # site1 refuses
    made_id = None
    try:
        assert api.post("/v1/images", headers=headers, json={
            "name": f"sf-spill-{tag}", "source": {"site": "site1", "image_id": source.id},
            "placement": {"sites": ["site1", "site2"]}}).status_code == 202
        assert wait_for(lambda: {b["status"] for b in api.get(f"/v1/images/sf-spill-{tag}", headers=headers)
                                 .json()["bindings"]} == {"in-sync"}, 300)
        assert api.post("/v1/inventory/refresh", params={"full": "true"}, headers=admin).status_code == 202

        def plan() -> dict[str, Any]:
            answer = api.post("/v1/servers", params={"dry_run": "true"}, headers=headers, json={
                "name": f"sf-spill-{tag}", "flavor": f"sf-spill-{tag}", "image": f"sf-spill-{tag}",
                "placement": {"policy": "weighted", "weight_label": "cost"}})
            return dict(answer.json().get("plan") or {})

        assert wait_for(lambda: [c["site_name"] for c in plan().get("candidates", [])][:2] == ["site1", "site2"],
                        300), plan()
        made = api.post("/v1/servers", headers=headers, json={
            "name": f"sf-spill-{tag}", "flavor": f"sf-spill-{tag}", "image": f"sf-spill-{tag}",
            "placement": {"policy": "weighted", "weight_label": "cost"}})
        assert made.status_code == 202, made.text
        made_id = made.json()["servers"][0]["id"]
        assert wait_for(lambda: api.get(f"/v1/servers/{made_id}", headers=headers).json()["status"]
                        in ("active", "failed"), 600)
        shown = api.get(f"/v1/servers/{made_id}", headers=headers).json()
        assert (shown["status"], shown["site"]) == ("active", "site2"), shown
        [refusal] = shown["attempts"]
        assert refusal["site_name"] == "site1" and "quota" in refusal["error"].lower(), refusal
        assert list(conns["site1"].compute.servers(name=f"sf-spill-{tag}")) == []  # nothing left where refused
        assert conns["site2"].compute.get_server(shown["remote_id"]).status == "ACTIVE"
    finally:
        if made_id is not None:
            api.delete(f"/v1/servers/{made_id}", headers=headers)
            wait_for(lambda: api.get(f"/v1/servers/{made_id}", headers=headers).json()["status"] == "deleted", 300)
        for site in ("site1", "site2"):
            for server in conns[site].compute.servers(name=f"sf-spill-{tag}"):
                conns[site].compute.delete_server(server, ignore_missing=True)
                conns[site].compute.wait_for_delete(server, wait=300)
        api.delete(f"/v1/images/sf-spill-{tag}", headers=headers)
        wait_for(lambda: api.get(f"/v1/images/sf-spill-{tag}", headers=headers).status_code == 404, 120)
        for conn in conns.values():
            for image in conn.image.images(name=f"sf-spill-{tag}"):
                tidy(conn.image.delete_image, image, ignore_missing=True)
        for site, flavor in flavors.items():
            admins[site].compute.delete_flavor(flavor, ignore_missing=True)
        for site in ("site1", "site2", "site3"):
            api.patch(f"/v1/sites/{site}", headers=admin, json={"labels": {}})
