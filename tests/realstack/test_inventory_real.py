"""The global inventory against a real OpenStack site: a server booted on site2 behind Skyfleet's back
shows in the global view as ACTIVE after a refresh, and disappears (with an event) once deleted; a
volume made on site2 after the first full refresh shows through the periodic incremental refresh
within two of its intervals.

Run by testbed/realstack/contract.sh (marker ``realstack``); clouds from ``OS_CLIENT_CONFIG_FILE``.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.reconcile.inventory import refresh_fleet
from tests.realstack.support import tidy

pytestmark = pytest.mark.realstack


@pytest.fixture(scope="module")
def site2(clouds: dict[str, Any]) -> dict[str, Any]:
    cloud: dict[str, Any] = clouds["site2"]
    return cloud


@pytest.fixture
def kit(site2: dict[str, Any]) -> Iterator[tuple[Any, dict[str, str]]]:
    """Admin connection and a uniquely named flavor, image and network on site2 (removed afterwards)."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **site2)
    tag = uuid.uuid4().hex[:8]
    made: dict[str, str] = {"tag": tag}
    try:
        made["flavor"] = conn.compute.create_flavor(name=f"sf-inv-{tag}", ram=64, vcpus=1, disk=1).id
        made["image"] = conn.image.create_image(
            name=f"sf-inv-{tag}", data=io.BytesIO(b"\0" * 1024), disk_format="raw", container_format="bare").id
        made["network"] = conn.network.create_network(name=f"sf-inv-{tag}").id
        conn.network.create_subnet(network_id=made["network"], cidr="10.79.0.0/24", ip_version=4)
        yield conn, made
    finally:
        for server in conn.compute.servers(all_projects=True, name=f"sf-inv-{tag}"):
            conn.compute.delete_server(server, force=True)
            conn.compute.wait_for_delete(server, wait=120)
        if "network" in made:
            for port in conn.network.ports(network_id=made["network"]):
                conn.network.delete_port(port, ignore_missing=True)
            conn.network.delete_network(made["network"], ignore_missing=True)
        if "image" in made:
            tidy(conn.image.delete_image, made["image"], ignore_missing=True)
        if "flavor" in made:
            conn.compute.delete_flavor(made["flavor"], ignore_missing=True)


def test_server_on_real_site_appears_active_then_goes(
    site2: dict[str, Any], kit: tuple[Any, dict[str, str]], runtime_factory: Callable[..., Runtime]
) -> None:
    conn, made = kit
    runtime = runtime_factory(None, None, site_timeout=30)
    auth = {**site2["auth"], "region_name": site2.get("region_name"), "interface": site2.get("interface", "public")}
    with transaction(runtime.factory) as session:
        sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(
            {"name": "real-site2", "auth": auth})).availability = "online"

    def refresh(full: bool) -> None:
        report = refresh_fleet(runtime.factory, box=runtime.box, concurrency=2, timeout=30, full=full)
        assert report.failed == 0, report.as_dict()

    refresh(True)
    name = f"sf-inv-{made['tag']}"
    server = conn.compute.create_server(name=name, flavor_id=made["flavor"], image_id=made["image"],
                                        networks=[{"uuid": made["network"]}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=180)
    refresh(False)  # incremental: changes-since
    with TestClient(create_app(runtime, start_workers=False)) as client:
        (row,) = client.get("/v1/inventory/servers", params={"name": name}).json()["items"]
        assert (row["remote_id"], row["status"], row["site"]) == (server.id, "ACTIVE", "real-site2")
        assert row["ips"] and row["ips"][0].startswith("10.79.0.")
        refresh(True)  # ports have no change feed: the full refresh reads them
        ports = client.get("/v1/inventory/ports", params={"ip": row["ips"][0], "site": "real-site2"}).json()
        assert ports["items"][0]["data"]["device_id"] == server.id
        summary = client.get("/v1/inventory/summary").json()
        assert summary["capacity"]["vcpus"] > 0

        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
        refresh(False)
        assert client.get("/v1/inventory/servers", params={"name": name}).json()["items"] == []
        deleted = client.get("/v1/events", params={"kind": "inventory.deleted"}).json()["events"]
        assert any(e["details"]["remote_id"] == server.id for e in deleted)


INCREMENTAL_INTERVAL = 15.0


def test_volume_made_behind_skyfleets_back_shows_within_two_incremental_intervals(
    site2: dict[str, Any], runtime_factory: Callable[..., Runtime]
) -> None:
    """The periodic workers run as in production; the test only reads the API, as a user does."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **site2)
    runtime = runtime_factory(None, None, site_timeout=30, inventory_interval=INCREMENTAL_INTERVAL,
                              inventory_full_interval=3600, audit_interval=3600, sync_audit_interval=3600,
                              quota_interval=3600)
    auth = {**site2["auth"], "region_name": site2.get("region_name"), "interface": site2.get("interface", "public")}
    with transaction(runtime.factory) as session:
        sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(
            {"name": "real-site2", "auth": auth})).availability = "online"
    name = f"sf-inv-vol-{uuid.uuid4().hex[:8]}"
    volume = None
    with TestClient(create_app(runtime, start_workers=True)) as client:

        def site_row() -> dict[str, Any]:
            summary = client.get("/v1/inventory/summary").json()
            return next((s for s in summary["sites"] if s["site"] == "real-site2"), {})

        deadline = time.monotonic() + 180
        while not site_row().get("full_refreshed_at"):
            assert time.monotonic() < deadline, "no first full refresh within 180 s"
            time.sleep(1)
        time.sleep(3)  # the incremental job's first run is a full refresh too: let both end
        full_at = site_row()["full_refreshed_at"]
        try:
            volume = conn.block_storage.create_volume(size=1, name=name)
            conn.block_storage.wait_for_status(volume, "available", wait=120)
            made = time.monotonic()
            rows: list[dict[str, Any]] = []
            while not rows and time.monotonic() - made < 2 * INCREMENTAL_INTERVAL + 5:
                time.sleep(1)
                rows = client.get("/v1/inventory/volumes", params={"name": name}).json()["items"]
            waited = time.monotonic() - made
            assert rows, f"volume {volume.id} not in /v1/inventory/volumes {waited:.0f} s after it was made"
            assert (rows[0]["remote_id"], rows[0]["site"]) == (volume.id, "real-site2")
            assert waited <= 2 * INCREMENTAL_INTERVAL, waited
            assert site_row()["full_refreshed_at"] == full_at, "a full refresh ran: the feed was not what found it"
        finally:
            if volume is not None:
                conn.block_storage.delete_volume(volume, ignore_missing=True)
