"""Identity on two real regions of one Keystone: site1 (RegionOne) and site3 (RegionTwo, which has no
Keystone of its own). Both tasks write to the same Keystone; the objects must be created once, both
bindings recorded as Skyfleet's (so a purge from either region deletes them), and nothing fails on
the second region's duplicate. Needs site3: ``testbed/realstack/up.sh site3:22000:RegionTwo:site1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, token, wait_for

pytestmark = pytest.mark.realstack


def test_two_regions_of_one_keystone_get_each_object_once(runtime_factory: Callable[..., Runtime],
                                                          clouds: dict[str, Any]) -> None:
    if "site3" not in clouds:
        if os.environ.get("CI"):  # testbed/realstack/contract.sh brings site3 up by default
            pytest.fail("site3 (RegionTwo on site1's Keystone) is not up")
        pytest.skip("site3 is not up: testbed/realstack/up.sh site3:22000:RegionTwo:site1")
    tag = uuid.uuid4().hex[:8]
    project, user = f"acme-{tag}", f"bob-{tag}"
    home = clouds["site1"]["auth"]
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                         home_username=home["username"], home_password=home["password"],
                         home_project_name=home["project_name"], site_timeout=30, audit_interval=5,
                         sync_audit_interval=5)
    admin = connect(home).identity
    try:
        with TestClient(create_app(rt, start_workers=True)) as client:
            headers = {"X-Auth-Token": token(home)}
            for name in ("site1", "site3"):
                auth = {**clouds[name]["auth"], "region_name": clouds[name].get("region_name", "RegionOne"),
                        "interface": "public"}
                assert client.post("/v1/sites", json={"name": name, "auth": auth}, headers=headers).status_code == 201
            for path, spec in (("projects", {"name": project}),
                               ("users", {"name": user, "password": "Bob-pass-1", "default_project": project})):
                assert client.post(f"/v1/identity/{path}", json={"spec": spec}, headers=headers).status_code == 202
            refs = (f"projects/{project}", f"users/{user}")

            def settled() -> bool:
                return all({b["status"] for b in client.get(f"/v1/identity/{ref}", headers=headers).json()["bindings"]}
                           == {"in-sync"} for ref in refs)

            assert wait_for(settled, 120), [client.get(f"/v1/identity/{r}", headers=headers).text for r in refs]
            assert [p.name for p in admin.projects(name=project)] == [project]  # written once
            assert [u.name for u in admin.users(name=user)] == [user]
            for ref in refs:
                bindings = client.get(f"/v1/identity/{ref}", headers=headers).json()["bindings"]
                assert len({b["remote_id"] for b in bindings}) == 1 and all(b["owned"] for b in bindings), bindings
            for ref in refs[::-1]:
                client.delete(f"/v1/identity/{ref}", params={"purge": True}, headers=headers)
            assert wait_for(lambda: all(client.get(f"/v1/identity/{r}", headers=headers).status_code == 404
                                        for r in refs), 120)
            assert list(admin.projects(name=project)) == [] and list(admin.users(name=user)) == []
    finally:
        for found in admin.users(name=user):
            admin.delete_user(found, ignore_missing=True)
        for found in admin.projects(name=project):
            admin.delete_project(found, ignore_missing=True)
