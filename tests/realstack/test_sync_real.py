"""Sync against the two real OpenStack sites: a keypair, a private flavor with extra specs and project
access, and security groups with remote-group rules all converge; drift made behind Skyfleet's back
is repaired by the audit; delete with purge cleans up. Every name is unique to the run.

Run by testbed/realstack/contract.sh (marker ``realstack``); clouds from ``OS_CLIENT_CONFIG_FILE``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.reconcile.engine import Engine, EngineConfig

pytestmark = pytest.mark.realstack
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-realstack")
SITES = ("site1", "site2")


def sdk(cloud: dict[str, Any]) -> Any:
    return openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"), auth_type="password",
                             load_yaml_config=False, load_envvars=False)


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime],
          clouds: dict[str, Any]) -> Iterator[tuple[TestClient, Runtime, Engine]]:
    rt = runtime_factory(None, None, site_timeout=30)
    engine = Engine(rt.factory, box=rt.box, config=EngineConfig(site_timeout=30))
    with TestClient(create_app(rt, start_workers=False)) as client:
        for name in SITES:
            auth = {**clouds[name]["auth"], "region_name": clouds[name].get("region_name"), "interface": "public"}
            assert client.post("/v1/sites", json={"name": name, "auth": auth}).status_code == 201
        yield client, rt, engine


def converge(rt: Runtime, engine: Engine) -> None:
    for _ in range(6):
        with transaction(rt.factory) as session:
            session.execute(update(Task).where(Task.state == "pending").values(next_attempt_at=utcnow()))
        if engine.run_until_idle() == 0:
            return


def statuses(client: TestClient, path: str) -> dict[str, tuple[str, str | None]]:
    body = client.get(path).json()
    return {b["site_name"]: (b["status"], b["error"]) for b in body["bindings"]}


def test_keypair_flavor_security_groups_converge_and_drift_is_repaired(
        fleet: tuple[TestClient, Runtime, Engine], clouds: dict[str, Any]) -> None:
    client, rt, engine = fleet
    tag = uuid.uuid4().hex[:8]
    key, flavor, web, db = f"sf-key-{tag}", f"sf.flavor.{tag}", f"sf-web-{tag}", f"sf-db-{tag}"
    conns = {name: sdk(clouds[name]) for name in SITES}
    try:
        client.post("/v1/keypairs", json={"spec": {"name": key, "public_key": PUBLIC_KEY}})
        client.post("/v1/flavors", json={"spec": {
            "name": flavor, "vcpus": 1, "ram": 128, "disk": 1, "is_public": False,
            "extra_specs": {"hw:mem_page_size": "large"}, "access": [{"name": "admin"}]}})
        client.post("/v1/security-groups", json={"spec": {"name": web, "rules": [
            {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},
            {"protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080, "remote_group": web}]}})
        client.post("/v1/security-groups", json={"spec": {"name": db, "rules": [
            {"protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_group": web}]}})
        converge(rt, engine)
        for path in (f"/v1/keypairs/{key}", f"/v1/flavors/{flavor}", f"/v1/security-groups/{web}",
                     f"/v1/security-groups/{db}"):
            assert {s for s, _ in statuses(client, path).values()} == {"in-sync"}, statuses(client, path)
        for name, conn in conns.items():
            found = conn.compute.find_flavor(flavor, ignore_missing=False, get_extra_specs=True)
            assert found.extra_specs == {"hw:mem_page_size": "large"}, name
            assert {a["tenant_id"] for a in conn.compute.get_flavor_access(found)} == {conn.current_project_id}
            web_group = conn.network.find_security_group(web, project_id=conn.current_project_id)
            db_group = conn.network.find_security_group(db, project_id=conn.current_project_id)
            assert any(r["remote_group_id"] == web_group.id for r in db_group.security_group_rules)
        # drift behind Skyfleet's back: keypair deleted in site2, extra spec changed and a rule removed in site1
        conns["site2"].compute.delete_keypair(key)
        f1 = conns["site1"].compute.find_flavor(flavor, ignore_missing=False)
        conns["site1"].compute.update_flavor_extra_specs_property(f1, "hw:mem_page_size", "small")
        group = conns["site1"].network.find_security_group(web, project_id=conns["site1"].current_project_id)
        rule = next(r for r in group.security_group_rules if r["port_range_min"] == 443)
        conns["site1"].network.delete_security_group_rule(rule["id"])
        report = rt.drift_audit_now()  # one listing per kind per site finds the three, and only them
        assert (report.drifted, report.failed, report.calls) == (3, 0, 3 * len(SITES)), report.as_dict()
        converge(rt, engine)
        assert conns["site2"].compute.find_keypair(key) is not None
        assert conns["site1"].compute.fetch_flavor_extra_specs(f1).extra_specs["hw:mem_page_size"] == "large"
        group = conns["site1"].network.get_security_group(group.id)
        assert any(r["port_range_min"] == 443 for r in group.security_group_rules)
        for path in (f"/v1/keypairs/{key}", f"/v1/flavors/{flavor}", f"/v1/security-groups/{web}"):
            assert {s for s, _ in statuses(client, path).values()} == {"in-sync"}
        # delete: the database group first (it references the web group)
        for path in (f"/v1/keypairs/{key}", f"/v1/flavors/{flavor}", f"/v1/security-groups/{db}"):
            assert client.delete(path).status_code == 202
        converge(rt, engine)
        assert client.delete(f"/v1/security-groups/{web}").status_code == 202
        converge(rt, engine)
        client.get("/v1/security-groups")
        for name, conn in conns.items():
            assert conn.compute.find_keypair(key) is None, name
            assert conn.compute.find_flavor(flavor) is None, name
            assert conn.network.find_security_group(web, project_id=conn.current_project_id) is None, name
    finally:
        for conn in conns.values():
            for group_name in (db, web):
                found = conn.network.find_security_group(group_name, project_id=conn.current_project_id)
                if found is not None:
                    conn.network.delete_security_group(found, ignore_missing=True)
            conn.compute.delete_keypair(key, ignore_missing=True)
            leftover = conn.compute.find_flavor(flavor)
            if leftover is not None:
                conn.compute.delete_flavor(leftover, ignore_missing=True)


def test_kingbird_os_sync_copies_a_flavor_from_site1_to_site2(
        fleet: tuple[TestClient, Runtime, Engine], clouds: dict[str, Any]) -> None:
    client, rt, engine = fleet
    name = f"sf.copy.{uuid.uuid4().hex[:8]}"
    one, two = sdk(clouds["site1"]), sdk(clouds["site2"])
    try:
        made = one.compute.create_flavor(name=name, vcpus=1, ram=128, disk=1)
        one.compute.create_flavor_extra_specs(made, {"hw:cpu_policy": "shared"})
        url = f"/v1.0/{one.current_project_id}/os-sync"
        job = client.post(url, json={"resource_set": {"resource_type": "flavor", "resources": [name],
                                                      "source": "site1", "target": ["site2"]}}).json()
        job_id = job["job_status"]["id"]
        rows: list[dict[str, Any]] = []
        for _ in range(4):
            converge(rt, engine)
            rows = client.get(f"{url}/{job_id}").json()["job_set"]
            if rows and rows[0]["sync_status"] != "IN_PROGRESS":
                break
        assert [(r["target_region"], r["sync_status"]) for r in rows] == [("site2", "SUCCESS")], rows
        copied = two.compute.find_flavor(name, ignore_missing=False, get_extra_specs=True)
        assert (copied.vcpus, copied.ram, copied.extra_specs) == (1, 128, {"hw:cpu_policy": "shared"})
        assert client.delete(f"{url}/{job_id}").status_code == 200
    finally:
        for conn in (one, two):
            found = conn.compute.find_flavor(name)
            if found is not None:
                conn.compute.delete_flavor(found, ignore_missing=True)
