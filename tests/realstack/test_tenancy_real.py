"""A tenant acts only as itself, on the two real sites (which share nothing: each has its own
Keystone). Site1's Keystone is Skyfleet's home Keystone and validates the tenant's real token; the
tenant's project and user exist by the same names on site2. The tenant declares a security group
and a keypair through the API and waits, as a user waits, until openstacksdk on each site, logged
in as the tenant, shows them in the tenant's own project and user; the admin project has neither.
A tenant's ``owner: site`` is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, token, wait_for

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq "
              "skyfleet-tenancy")
PASSWORD = "tenant-secret-pass"




@pytest.fixture
def tenant(clouds: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A project and a member user of the same names on both sites (the shared-nothing mapping)."""
    tag = uuid.uuid4().hex[:8]
    made: list[tuple[Any, Any, Any]] = []
    for name in SITES:
        admin = connect(clouds[name]["auth"])
        project = admin.identity.create_project(name=f"sf-tenant-{tag}", domain_id="default")
        user = admin.identity.create_user(name=f"sf-user-{tag}", password=PASSWORD, domain_id="default",
                                          default_project_id=project.id)
        admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
        made.append((admin, project, user))
    yield {"project": f"sf-tenant-{tag}", "user": f"sf-user-{tag}", "tag": tag}
    for admin, project, user in made:
        for group in admin.network.security_groups(project_id=project.id):
            if group.name != "default":
                admin.network.delete_security_group(group, ignore_missing=True)
        admin.compute.delete_keypair(f"sf-key-{tag}", user_id=user.id, ignore_missing=True)
        admin.identity.delete_user(user, ignore_missing=True)
        admin.identity.delete_project(project, ignore_missing=True)


def tenant_auth(clouds: dict[str, Any], site: str, tenant: dict[str, Any]) -> dict[str, Any]:
    return {**clouds[site]["auth"], "username": tenant["user"], "password": PASSWORD,
            "project_name": tenant["project"]}


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any]) -> Iterator[TestClient]:
    with fleet_api(runtime_factory, clouds, SITES,
                   site_timeout=30, audit_interval=5) as client:
        yield client






def test_a_tenants_writes_land_in_its_own_project_and_user_on_every_site(
        api: TestClient, clouds: dict[str, Any], tenant: dict[str, Any]) -> None:
    headers = {"X-Auth-Token": token(tenant_auth(clouds, "site1", tenant))}
    group, key = f"sf-web-{tenant['tag']}", f"sf-key-{tenant['tag']}"
    rules = [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}]
    made = api.post("/v1/security-groups", json={"spec": {"name": group, "rules": rules}}, headers=headers)
    assert made.status_code == 202, made.text
    assert api.post("/v1/keypairs", json={"spec": {"name": key, "public_key": PUBLIC_KEY}},
                    headers=headers).status_code == 202
    refused = api.post("/v1/keypairs", headers=headers, json={
        "spec": {"name": f"{key}-site", "public_key": PUBLIC_KEY}, "owner": "site", "force": True})
    assert refused.status_code == 403 and "fleet admins" in refused.json()["detail"]

    as_tenant = {site: connect(tenant_auth(clouds, site, tenant)) for site in SITES}
    as_admin = {site: connect(clouds[site]["auth"]) for site in SITES}

    def landed() -> bool:
        return all(
            conn.network.find_security_group(group, project_id=conn.current_project_id) is not None
            and conn.compute.find_keypair(key) is not None for conn in as_tenant.values())

    assert wait_for(landed, 120), api.get(f"/v1/security-groups/{group}", headers=headers).text
    for site in SITES:
        tenant_conn, admin_conn = as_tenant[site], as_admin[site]
        found = tenant_conn.network.find_security_group(group, project_id=tenant_conn.current_project_id)
        assert found.project_id == tenant_conn.current_project_id != admin_conn.current_project_id
        assert {(r["protocol"], r["port_range_min"]) for r in found.security_group_rules} >= {("tcp", 22)}
        assert admin_conn.network.find_security_group(group, project_id=admin_conn.current_project_id) is None
        assert admin_conn.compute.find_keypair(key) is None  # not the site credential's own user
        assert admin_conn.compute.find_keypair(f"{key}-site") is None
    shown = api.get(f"/v1/security-groups/{group}", headers=headers).json()
    assert {b["site_name"]: b["status"] for b in shown["bindings"]} == {"site1": "in-sync", "site2": "in-sync"}
