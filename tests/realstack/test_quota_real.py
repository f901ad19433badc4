"""Global quota on the two real sites: one global cores limit across both, per-site limits written in
Nova, and a boot beyond the global limit refused by the site itself.

The sites share nothing (each has its own Keystone), so the global project is matched by name: the
test creates a uniquely named project on both sites and removes everything it made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient
from openstack import exceptions as sdk_exc

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.reconcile import quota as rounds
from skyfleet.reconcile.engine import Engine, EngineConfig
from tests.realstack.support import tidy

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")


def connect(cloud: dict[str, Any], project_id: str | None = None) -> openstack.connection.Connection:
    auth = dict(cloud["auth"])
    if project_id:
        auth.pop("project_name", None)
        auth.pop("project_domain_name", None)
        auth["project_id"] = project_id
    return openstack.connect(load_yaml_config=False, load_envvars=False, auth=auth,
                             region_name=cloud.get("region_name"), interface=cloud.get("interface", "public"),
                             identity_api_version="3")


@pytest.fixture
def tenant(clouds: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """A project named sfq-<random> on both sites (admin has role admin on it); removed afterwards."""
    name = f"sfq-{uuid.uuid4().hex[:8]}"
    ids: dict[str, str] = {}
    made: list[tuple[openstack.connection.Connection, Any]] = []
    try:
        for site in SITES:
            conn = connect(clouds[site])
            project = conn.identity.create_project(name=name, domain_id="default")
            ids[site] = project.id
            user = conn.identity.find_user("admin", domain_id="default")
            role = conn.identity.find_role("admin")
            conn.identity.assign_project_role_to_user(project, user, role)
            made.append((conn, project))
        yield name, ids
    finally:
        for conn, project in made:
            for server in conn.compute.servers(project_id=project.id, all_projects=True):
                conn.compute.delete_server(server)
                conn.compute.wait_for_delete(server, wait=60)
            conn.identity.delete_project(project)


def register(api: TestClient, clouds: dict[str, Any]) -> None:
    for site in SITES:
        cloud = clouds[site]
        auth = {**cloud["auth"], "region_name": cloud.get("region_name"), "interface": "public"}
        response = api.post("/v1/sites", json={"name": site, "auth": auth})
        assert response.status_code == 201 and response.json()["availability"] == "online", response.text


def nova_cores(cloud: dict[str, Any], project_id: str) -> int:
    conn = connect(cloud)
    body = conn.compute.get(f"/os-quota-sets/{project_id}").json()["quota_set"]
    return int(body["cores"])


def test_global_cores_limit_across_both_real_sites(
    tenant: tuple[str, dict[str, str]], clouds: dict[str, Any], runtime_factory: Callable[..., Runtime]
) -> None:
    name, ids = tenant
    rt = runtime_factory(None, None, site_timeout=20)
    engine = Engine(rt.factory, box=rt.box, config=EngineConfig(site_timeout=20))
    with TestClient(create_app(rt, start_workers=False)) as api:
        register(api, clouds)
        body = {"limits": {"cores": 2}, "project_name": name, "policy": "even", "mode": "hard"}
        assert api.put(f"/v1/quotas/g-{name}", json=body).status_code == 200
        for _ in range(2):
            with transaction(rt.factory) as session:
                rounds.round_(session, home_auth_url="", now=utcnow())
            engine.run_until_idle()
        usage = api.get(f"/v1/quotas/g-{name}/usage").json()
    assert {s["site_name"]: s["remote_project_id"] for s in usage["sites"]} == ids, usage
    assert all(s["last_error"] is None and s["observed_at"] for s in usage["sites"]), usage
    written = {site: nova_cores(clouds[site], ids[site]) for site in SITES}
    assert written == {"site1": 1, "site2": 1}
    boot_beyond_the_limit(clouds["site1"], ids["site1"], name)


def boot_beyond_the_limit(cloud: dict[str, Any], project_id: str, name: str) -> None:
    """Two 1-vCPU servers in a site whose share is 1 core: Nova itself refuses the second."""
    admin = connect(cloud)
    flavor = admin.compute.create_flavor(name=name, vcpus=1, ram=64, disk=0, is_public=True)
    image = admin.image.create_image(name=name, data=b"\0" * 512, disk_format="raw", container_format="bare",
                                      visibility="public")
    try:
        conn = connect(cloud, project_id)
        first = conn.compute.create_server(name=f"{name}-1", flavor_id=flavor.id, image_id=image.id,
                                           networks="none")
        conn.compute.wait_for_server(first, status="ACTIVE", wait=120)
        with pytest.raises(sdk_exc.HttpException) as refused:
            conn.compute.create_server(name=f"{name}-2", flavor_id=flavor.id, image_id=image.id, networks="none")
        assert refused.value.status_code == 403 and "quota" in str(refused.value).lower()
        conn.compute.delete_server(first)
        conn.compute.wait_for_delete(first, wait=120)
    finally:
        admin.compute.delete_flavor(flavor, ignore_missing=True)
        tidy(admin.image.delete_image, image, ignore_missing=True)
