"""Contract: boot a server to ACTIVE and delete it; list servers changed since a time."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import openstack.exceptions
import pytest
from contract_support import BootKit, Site, quiet, unique
from openstack.compute.v2.server import Server

from skyfleet.drivers.openstack.inventory import Reader

pytestmark = pytest.mark.contract

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _boot(kit: BootKit, name: str | None = None) -> Server:
    server: Server = kit.tenant.conn.compute.create_server(
        name=name or unique("server"),
        flavor_id=kit.flavor_id,
        image_id=kit.image_id,
        networks=[{"uuid": kit.network_id}],
    )
    return server


def test_boot_server_to_active_and_delete(site: Site, boot_kit: BootKit) -> None:
    conn = boot_kit.tenant.conn
    name = unique("server")
    created = _boot(boot_kit, name)
    try:
        assert created.id and created.status in (None, "BUILD")
        server = conn.compute.wait_for_server(created, status="ACTIVE", wait=180)
        assert server.status == "ACTIVE"
        assert server.name == name
        assert server.project_id == boot_kit.tenant.project_id
        assert server.user_id == boot_kit.tenant.user_id
        assert server.image["id"] == boot_kit.image_id
        # Since microversion 2.47 the flavor is embedded, not linked.
        assert server.flavor["vcpus"] == 1 and server.flavor["ram"] == 64 and server.flavor["disk"] == 1
        assert isinstance(server.flavor["original_name"], str)
        assert server.vm_state == "active" and server.task_state is None
        assert server.power_state == 1
        assert TIMESTAMP.match(server.created_at) and TIMESTAMP.match(server.updated_at)
        assert server.launched_at is not None

        addresses = server.addresses[boot_kit.network_name]
        assert len(addresses) == 1
        addr = addresses[0]
        assert addr["version"] == 4
        assert addr["OS-EXT-IPS:type"] == "fixed"
        assert addr["addr"].startswith("10.77.0.")
        assert MAC.match(addr["OS-EXT-IPS-MAC:mac_addr"])

        ports = list(conn.network.ports(device_id=server.id))
        assert len(ports) == 1
        assert ports[0].device_owner.startswith("compute:")
        assert ports[0].mac_address == addr["OS-EXT-IPS-MAC:mac_addr"]
        assert ports[0].fixed_ips[0]["ip_address"] == addr["addr"]

        assert server.id in {s.id for s in conn.compute.servers()}
        # Admin sees it across projects, with the host it landed on.
        admin_view = site.admin.compute.get_server(server.id)
        assert admin_view.hypervisor_hostname and admin_view.compute_host
        assert server.id in {s.id for s in site.admin.compute.servers(all_projects=True)}
        assert server.id not in {s.id for s in site.admin.compute.servers()}
    finally:
        quiet(conn.compute.delete_server, created)
    conn.compute.wait_for_delete(created, wait=120)
    with pytest.raises(openstack.exceptions.NotFoundException) as gone:
        conn.compute.get_server(created.id)
    assert gone.value.status_code == 404
    assert list(conn.network.ports(device_id=created.id)) == []


@pytest.mark.covers("inventory.Reader.changed_servers")
def test_changes_since_lists_changed_and_deleted_servers(site: Site, boot_kit: BootKit) -> None:
    conn = boot_kit.tenant.conn
    untouched, renamed, deleted = (_boot(boot_kit) for _ in range(3))
    boots = [untouched, renamed, deleted]
    try:
        for server in boots:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=180)
        # nova keeps whole seconds: leave a clear gap on both sides of the mark.
        time.sleep(1.5)
        since = datetime.now(UTC).replace(microsecond=0)
        time.sleep(1.5)
        conn.compute.update_server(renamed, name=unique("renamed"))
        conn.compute.delete_server(deleted)
        conn.compute.wait_for_delete(deleted, wait=120)

        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        changed = {s.id: s for s in conn.compute.servers(changes_since=stamp)}
        assert renamed.id in changed
        assert changed[renamed.id].status == "ACTIVE"
        assert deleted.id in changed, "a deleted server must be listed with changes-since"
        assert changed[deleted.id].status == "DELETED"
        assert untouched.id not in changed
        # Without changes-since, deleted servers are not listed.
        plain = {s.id for s in conn.compute.servers()}
        assert deleted.id not in plain and {untouched.id, renamed.id} <= plain
        # A mark in the future lists nothing.
        future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert list(conn.compute.servers(changes_since=future)) == []
        # A malformed timestamp is a bad request.
        with pytest.raises(openstack.exceptions.BadRequestException) as bad:
            list(conn.compute.servers(changes_since="yesterday"))
        assert bad.value.status_code == 400
        # The inventory's feed: all projects, one server a page (a deleted server is a valid marker).
        reader = Reader(site.admin, page=1)
        found = {r.remote_id: r for r in reader.changed_servers(stamp)}
        assert renamed.id in found and untouched.id not in found
        assert found[deleted.id].status == "DELETED"
        assert found[renamed.id].project_id == boot_kit.tenant.project_id
        assert reader.calls >= len(found)
    finally:
        for server in boots:
            quiet(conn.compute.delete_server, server)
        for server in boots:
            quiet(conn.compute.wait_for_delete, server, wait=120)
