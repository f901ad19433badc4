"""Contract: the boot driver (``skyfleet.drivers.openstack.computeapi``) against the sites.

What a boot through Skyfleet does, call by call: scope the site credential to a tenant's project
(granting its user the member role there), find the tenant's image and network by name, create a
server marked with Skyfleet's id, find it again by that mark, watch it, stop it, delete it. The
tenant must see the server as its project's own.
"""

from __future__ import annotations

import time

import pytest
from contract_support import BootKit, Site, skyfleet_auth, unique

from skyfleet.drivers.openstack import computeapi
from skyfleet.drivers.openstack.inventory import server_record
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import PermanentSiteError

pytestmark = pytest.mark.contract


def _wait(conn: object, server_id: str, status: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        server = computeapi.get_server(conn, server_id)  # type: ignore[arg-type]
        assert server is not None
        if server["status"] == status:
            return server
        assert server["status"] != "ERROR" and time.monotonic() < deadline, server
        time.sleep(1)


@pytest.mark.covers("computeapi.project_auth", "computeapi.image_id", "computeapi.network_ids",
                    "computeapi.create_server", "computeapi.find_servers", "computeapi.get_server",
                    "computeapi.server_action", "computeapi.delete_server", "computeapi.console_log",
                    "computeapi.instance_actions", "inventory.server_record")
def test_boot_in_a_tenants_project_by_mark(site: Site, boot_kit: BootKit) -> None:
    pool = SitePool()
    auth = skyfleet_auth(site)
    admin = pool.connection(auth, timeout=60)
    project = boot_kit.tenant.project_id
    scoped = computeapi.project_auth(admin, auth, project)
    assert scoped["project_id"] == project and "project_name" not in scoped
    conn = pool.connection(scoped, timeout=60)
    assert conn.current_project_id == project
    image_name = boot_kit.tenant.conn.image.get_image(boot_kit.image_id).name
    assert computeapi.image_id(conn, image_name, project) == boot_kit.image_id
    assert computeapi.image_id(conn, unique("no-image"), project) is None
    assert computeapi.network_ids(conn, [boot_kit.network_name], project) == [boot_kit.network_id]
    with pytest.raises(PermanentSiteError):
        computeapi.network_ids(conn, [unique("no-net")], project)
    name, mark = unique("vm"), unique("mark")
    made = computeapi.create_server(conn, {"name": name, "flavorRef": boot_kit.flavor_id, "imageRef": boot_kit.image_id,
                                           "networks": [{"uuid": boot_kit.network_id}],
                                           "metadata": {"skyfleet_server": mark}})
    try:
        [found] = computeapi.find_servers(conn, name=name, tag_key="skyfleet_server", tag=mark)
        assert found["id"] == made["id"]
        assert computeapi.find_servers(conn, name=name, tag_key="skyfleet_server", tag="other") == []
        active = _wait(conn, made["id"], "ACTIVE")
        assert active["tenant_id"] == project
        seen = server_record(active)  # what the global view stores while a boot watches its server
        assert (seen.kind, seen.remote_id, seen.project_id, seen.name, seen.status) == (
            "servers", made["id"], project, name, "ACTIVE")
        assert seen.ips and set(seen.ips) <= {a["addr"] for net in active["addresses"].values() for a in net}
        assert boot_kit.tenant.conn.compute.get_server(made["id"]).project_id == project  # the tenant's own
        full = computeapi.console_log(conn, made["id"])
        assert full and len(computeapi.console_log(conn, made["id"], length=1).splitlines()) == 1
        computeapi.server_action(conn, made["id"], "os-stop")
        _wait(conn, made["id"], "SHUTOFF")
        history = computeapi.instance_actions(conn, made["id"])
        assert [a["action"] for a in history][:1] == ["stop"] and "create" in [a["action"] for a in history]
        assert all(a["request_id"].startswith("req-") for a in history)
    finally:
        assert computeapi.delete_server(conn, made["id"]) is True
    deadline = time.monotonic() + 180
    while computeapi.get_server(conn, made["id"]) is not None and time.monotonic() < deadline:
        time.sleep(1)
    assert computeapi.get_server(conn, made["id"]) is None
    assert computeapi.delete_server(conn, made["id"]) is False
