"""Placement, per-service fault scoping, version discovery (as keystoneauth walks it) and the /v3 auth_url."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keystoneauth1.exceptions
import openstack.exceptions
import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.simulator import Simulator

from .conftest import connect

JSON = {"Accept": "application/json"}


@pytest.fixture()
def psim() -> Iterator[Simulator]:
    with Simulator(2) as running:
        yield running


def _session(sim: Simulator, site: str) -> ks_session.Session:
    """A bare keystoneauth session, as Skyfleet's probe builds it."""
    cloud = sim.cloud(site)
    return ks_session.Session(auth=v3.Password(**cloud["auth"]))


def _token(sim: Simulator, site: str) -> str:
    return str(connect(sim, site).auth_token)


# --- placement -------------------------------------------------------------------------------------

def test_placement_root_is_a_public_version_document(psim: Simulator) -> None:
    resp = requests.get(f"{psim.base_url}/site-0001/placement/", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["OpenStack-API-Version"] == "placement 1.0"
    assert resp.json() == {"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0",
                                         "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]}
    data = _session(psim, "site-0001").get_endpoint_data(service_type="placement", interface="public",
                                                         region_name="RegionOne", discover_versions=True)
    assert data is not None and data.max_microversion == (1, 39) and data.min_microversion == (1, 0)


def test_placement_providers_inventories_and_usages(psim: Simulator) -> None:
    admin = connect(psim, "site-0001")
    providers = list(admin.placement.resource_providers())
    assert len(providers) == 1
    rp = providers[0]
    hypervisor = next(iter(admin.compute.hypervisors()))
    assert rp.id == hypervisor.id and rp.name == hypervisor.name
    assert admin.placement.get_resource_provider(rp.id).generation == rp.generation
    inventories = {i.resource_class: i for i in admin.placement.resource_provider_inventories(rp)}
    assert set(inventories) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    assert inventories["VCPU"].allocation_ratio == 4.0 and inventories["MEMORY_MB"].reserved == 512
    assert all(isinstance(i.total, int) and i.total > 0 for i in inventories.values())

    flavor = admin.compute.create_flavor(name="pl-small", ram=1024, vcpus=2, disk=10)
    image = admin.image.create_image(name="pl-img", data=b"x" * 1024, disk_format="raw", container_format="bare")
    net = admin.network.create_network(name="pl-net")
    admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.9.0.0/24")
    server = admin.compute.create_server(name="pl-vm", flavor_id=flavor.id, image_id=image.id,
                                         networks=[{"uuid": net.id}])
    token = admin.auth_token
    base = f"{psim.base_url}/site-0001/placement"
    usages = requests.get(f"{base}/resource_providers/{rp.id}/usages", headers={"X-Auth-Token": token},
                          timeout=5).json()
    assert usages["usages"] == {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}
    assert usages["resource_provider_generation"] > rp.generation
    project = requests.get(f"{base}/usages?project_id={admin.current_project_id}",
                           headers={"X-Auth-Token": token, "OpenStack-API-Version": "placement 1.9"}, timeout=5)
    assert project.json() == {"usages": {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}}
    admin.compute.delete_server(server)


def test_placement_microversions_errors_and_policy(psim: Simulator) -> None:
    base = f"{psim.base_url}/site-0001/placement"
    token = _token(psim, "site-0001")

    def get(path: str, version: str | None = None, method: str = "GET", tok: str | None = token) -> Any:
        headers = {"X-Auth-Token": tok} if tok else {}
        if version:
            headers["OpenStack-API-Version"] = f"placement {version}"
        return requests.request(method, base + path, headers=headers, timeout=5)

    old, new = get("/resource_providers").json(), get("/resource_providers", "1.39")
    assert "root_provider_uuid" not in old["resource_providers"][0]
    assert [link["rel"] for link in old["resource_providers"][0]["links"]] == ["self", "inventories", "usages"]
    assert new.headers["OpenStack-API-Version"] == "placement 1.39" and "Last-Modified" in new.headers
    rp = new.json()["resource_providers"][0]
    assert rp["root_provider_uuid"] == rp["uuid"] and rp["parent_provider_uuid"] is None
    assert get("/resource_providers?in_tree=" + rp["uuid"], "1.14").json()["resource_providers"]
    assert get("/resource_providers?resources=VCPU:100000", "1.39").json() == {"resource_providers": []}
    assert get("/resource_providers?name=nope").json() == {"resource_providers": []}

    missing = get("/resource_providers/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    err = missing.json()["errors"][0]
    assert err["title"] == "Not Found" and err["request_id"] == missing.headers["x-openstack-request-id"]
    assert get("/resource_providers?in_tree=" + rp["uuid"]).status_code == 400  # in_tree needs 1.14
    too_new = get("/resource_providers", "1.40")
    assert too_new.status_code == 406 and too_new.json()["errors"][0]["max_version"] == "1.39"
    assert get("/resource_providers", "abc").status_code == 400
    refused = get("/resource_providers", method="DELETE")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"
    assert get("/resource_providers", tok=None).status_code == 401

    demo = connect(psim, "site-0001", user="demo")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.placement.resource_providers())


# --- per-service faults ----------------------------------------------------------------------------

def test_faults_scoped_to_one_service(psim: Simulator) -> None:
    psim.set_faults("site-0001", error_rate=1.0, services=["compute"])
    assert psim.faults("site-0001").services == ["compute"]
    conn = connect(psim, "site-0001")
    assert conn.authorize()  # keystone is untouched
    assert list(conn.network.networks()) is not None
    assert list(conn.placement.resource_providers())
    with pytest.raises(openstack.exceptions.HttpException) as err:
        list(conn.compute.flavors())
    assert err.value.status_code == 503
    psim.set_faults("site-0001", error_rate=0.0, services=[], down=True)
    with pytest.raises(openstack.exceptions.SDKException):
        connect(psim, "site-0001").authorize()
    psim.set_faults("site-0001", services=["block-storage", "image"])  # down, but only for those two
    conn = connect(psim, "site-0001")
    assert list(conn.compute.flavors())
    with pytest.raises((openstack.exceptions.SDKException, keystoneauth1.exceptions.ConnectFailure)):
        list(conn.block_storage.volumes())
    psim.clear_faults("site-0001")
    assert psim.faults("site-0001").services == []


def test_fault_services_are_validated(psim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown service"):
        psim.set_faults("site-0001", services=["computer"])
    with pytest.raises(ValueError, match="list of service names"):
        psim.set_faults("site-0001", services="compute")
    url = f"{psim.base_url}/_sim/sites/site-0002/faults"
    bad = requests.put(url, json={"services": ["nova"]}, timeout=5)
    assert bad.status_code == 400 and "unknown service" in bad.json()["error"]["message"]
    good = requests.put(url, json={"services": ["volume"], "latency_ms": 10}, timeout=5)
    assert good.status_code == 200 and good.json()["services"] == ["volume"]


def test_quota_fault_scoped_to_one_service(psim: Simulator) -> None:
    psim.set_faults("site-0002", quota_exceeded=True, services=["network"])
    conn = connect(psim, "site-0002")
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_network(name="nope")
    assert conn.compute.create_flavor(name="still-fine", ram=64, vcpus=1, disk=1)


# --- discovery as keystoneauth does it -------------------------------------------------------------

def test_block_storage_discovery_finds_microversions_like_real_cinder(psim: Simulator) -> None:
    session = _session(psim, "site-0001")
    session.auth.get_access(session)
    psim.reset_counters()
    data = session.get_endpoint_data(service_type="block-storage", interface="public", region_name="RegionOne",
                                     discover_versions=True)
    assert data is not None
    assert data.min_microversion == (3, 0) and data.max_microversion == (3, 71)
    # real cinder: /v3 needs a token (401), then redirects (302) to /v3/, which lists the versions
    assert psim.counters("site-0001") == {("GET", "/volume/v3"): 2, ("GET", "/volume/v3/"): 1}


def test_cinder_versioned_roots_answer_like_real_cinder(psim: Simulator) -> None:
    base = f"{psim.base_url}/site-0001/volume"
    conn = connect(psim, "site-0001")
    auth = {**JSON, "X-Auth-Token": conn.auth_token}
    root = requests.get(f"{base}/", headers=JSON, timeout=5)
    assert root.status_code == 300 and root.headers["OpenStack-API-Version"] == "volume 3.0"
    doc = root.json()["versions"][0]
    assert set(doc) == {"id", "status", "version", "min_version", "updated", "links", "media-types"}
    assert (doc["id"], doc["status"], doc["version"], doc["min_version"]) == ("v3.0", "CURRENT", "3.71", "3.0")
    assert doc["links"][1] == {"rel": "self", "href": f"{base}/v3/"}
    assert requests.get(f"{base}/v3", headers=JSON, timeout=5).status_code == 401
    moved = requests.get(f"{base}/v3", headers=auth, allow_redirects=False, timeout=5)
    assert moved.status_code == 302 and moved.headers["Location"] == f"{base}/v3/"
    assert requests.get(f"{base}/v3/", headers=auth, timeout=5).json()["versions"] == [doc]
    project = requests.get(f"{base}/v3/{conn.current_project_id}", headers=auth, timeout=5)
    assert project.status_code == 404 and project.json()["code"] == "404 Not Found"


def test_every_service_discovers_through_keystoneauth(psim: Simulator) -> None:
    session = _session(psim, "site-0002")
    found = {}
    for stype in ("identity", "compute", "image", "network", "block-storage", "placement"):
        data = session.get_endpoint_data(service_type=stype, interface="public", region_name="RegionOne",
                                         discover_versions=True)
        assert data is not None, stype
        found[stype] = (data.api_version, data.max_microversion)
    assert found["identity"][0] == (3, 14)
    assert found["compute"][1] == (2, 100)
    assert found["image"][0] == (2, 17)
    assert found["network"][0] == (2, 0)
    assert found["block-storage"][1] == (3, 71)
    assert found["placement"][1] == (1, 39)


def test_other_version_documents_match_real_shapes(psim: Simulator) -> None:
    base = f"{psim.base_url}/site-0001"
    token = {**JSON, "X-Auth-Token": _token(psim, "site-0001")}
    identity = requests.get(f"{base}/identity/", headers=JSON, timeout=5)
    assert identity.status_code == 300 and identity.headers["Location"] == f"{base}/identity/v3/"
    image = requests.get(f"{base}/image/", headers=JSON, timeout=5).json()["versions"]
    assert [v["id"] for v in image if v["status"] == "CURRENT"] == ["v2.17"]
    assert requests.get(f"{base}/image/v2", headers=JSON, timeout=5).json()["code"] == "401 Unauthorized"
    moved = requests.get(f"{base}/image/v2", headers=token, allow_redirects=False, timeout=5)
    assert moved.status_code == 302 and moved.headers["Location"] == f"{base}/image/v2/"
    compute_v2 = requests.get(f"{base}/compute/v2/", headers=JSON, timeout=5).json()["version"]
    assert compute_v2["id"] == "v2.0" and compute_v2["status"] == "DEPRECATED"
    v21 = requests.get(f"{base}/compute/v2.1", headers=JSON, timeout=5)
    assert v21.headers["OpenStack-API-Version"] == "compute 2.1"
    assert requests.get(f"{base}/network/v2.0", headers=token, timeout=5).status_code == 404
    listing = requests.get(f"{base}/network/v2.0/", headers=token, timeout=5).json()["resources"]
    assert [r["collection"] for r in listing] == ["networks", "subnets", "subnetpools", "ports"]


def test_clouds_yaml_uses_the_versioned_auth_url(psim: Simulator) -> None:
    cloud = psim.cloud("site-0002")
    assert cloud["auth"]["auth_url"] == f"{psim.base_url}/site-0002/identity/v3"
    assert psim.clouds_yaml()["clouds"]["site-0001"]["auth"]["auth_url"].endswith("/identity/v3")
    conn = connect(psim, "site-0002")
    catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
    identity = next(s for s in catalog if s["type"] == "identity")
    assert {e["url"] for e in identity["endpoints"]} == {f"{psim.base_url}/site-0002/identity/v3"}
    assert requests.get(f"{psim.base_url}/site-0002/identity", timeout=5).status_code == 300


# --- what the health audit reads ---------------------------------------------------------------------

def test_nova_and_cinder_service_lists(psim: Simulator) -> None:
    admin = connect(psim, "site-0001")
    nova = {s.binary: s for s in admin.compute.services()}
    assert set(nova) == {"nova-scheduler", "nova-conductor", "nova-compute"}
    assert all((s.state, s.status) == ("up", "enabled") and len(s.id) == 36 for s in nova.values())
    assert nova["nova-compute"].availability_zone == "nova"
    assert nova["nova-conductor"].availability_zone == "internal"
    assert [s.binary for s in admin.compute.services(binary="nova-compute")] == ["nova-compute"]
    old = requests.get(f"{psim.base_url}/site-0001/compute/v2.1/os-services",
                       headers={"X-Auth-Token": admin.auth_token}, timeout=5).json()["services"]
    assert all(isinstance(s["id"], int) and "forced_down" not in s for s in old)
    cinder = {s.binary: s for s in admin.block_storage.services()}
    assert set(cinder) == {"cinder-scheduler", "cinder-volume"}
    assert all((s.state, s.status) == ("up", "enabled") and s.host for s in cinder.values())
    demo = connect(psim, "site-0001", user="demo")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.services())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.block_storage.services())


def test_image_virtual_size_like_glance_inspector(psim: Simulator) -> None:
    conn = connect(psim, "site-0002")
    raw = conn.image.create_image(name="vs-raw", data=b"r" * 4096, disk_format="raw", container_format="bare")
    assert conn.image.get_image(raw).virtual_size == 4096
    header = b"QFI\xfb" + b"\0" * 20 + (10 * 2**30).to_bytes(8, "big") + b"\0" * 100
    qcow = conn.image.create_image(name="vs-qcow", data=header, disk_format="qcow2", container_format="bare")
    assert conn.image.get_image(qcow).virtual_size == 10 * 2**30


def test_placed_servers_count_in_usage_and_show_in_changes_since(psim: Simulator) -> None:
    url = f"{psim.base_url}/_sim/sites/site-0002/servers"
    assert requests.post(url, json={"project_id": "p-placed", "vcpus": 0}, timeout=5).status_code == 400
    assert requests.post(url, json={"vcpus": 2}, timeout=5).status_code == 400
    made = requests.post(url, json={"project_id": "p-placed", "vcpus": 3, "ram": 1024}, timeout=5)
    assert made.status_code == 201
    conn = connect(psim, "site-0002")
    detail = conn.compute.get("/os-quota-sets/p-placed/detail").json()["quota_set"]
    assert detail["cores"]["in_use"] == 3 and detail["ram"]["in_use"] == 1024 and detail["instances"]["in_use"] == 1
    changed = conn.compute.get("/servers/detail?all_tenants=1&changes-since=2000-01-01T00:00:00Z").json()["servers"]
    assert made.json()["id"] in {s["id"] for s in changed}
