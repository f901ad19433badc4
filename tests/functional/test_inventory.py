"""The global inventory on simulated sites: resources created, changed and deleted behind Skyfleet's
back are seen (with events) by the next refresh; an unchanged site costs a few calls; an offline
site keeps its rows, marked stale; tenants see only their project; bad input is a 4xx."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal
from skyfleet.api.deps import get_principal
from skyfleet.api.runtime import Runtime
from skyfleet.reconcile.inventory import RefreshReport, refresh_fleet
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

SITES = ["site-0001", "site-0002", "site-0003"]


def connect(sim: Simulator, site: str, user: str = "demo") -> Any:
    return openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site, user=user))


def boot(conn: Any, name: str) -> Any:
    image = conn.image.create_image(name=f"img-{name}", data=io.BytesIO(b"boot" * 64), disk_format="qcow2",
                                    container_format="bare", allow_duplicates=True)
    net = conn.network.create_network(name=f"net-{name}")
    conn.network.create_subnet(network_id=net.id, cidr="10.9.0.0/24", ip_version=4)
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id="1", networks=[{"uuid": net.id}])
    return conn.compute.wait_for_server(server, wait=10, interval=0.05)


@pytest.fixture
def fleet(sim: Simulator, runtime_factory: Callable[..., Runtime]) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = runtime_factory(inventory_interval=30)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield runtime, client


def refresh(runtime: Runtime, *, full: bool = False) -> RefreshReport:
    return refresh_fleet(runtime.factory, box=runtime.box, concurrency=8, timeout=5, full=full)


def items(client: TestClient, kind: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/v1/inventory/{kind}", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def events_of(client: TestClient, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/events", params={"kind": kind}).json()["events"]
    return found


def test_changes_behind_skyfleets_back_show_up_with_events(
    sim: Simulator, fleet: tuple[Runtime, TestClient]
) -> None:
    runtime, client = fleet
    demo = connect(sim, "site-0002")
    server = boot(demo, "web-1")
    report = refresh(runtime)
    assert report.sites == 3 and report.full == 3 and report.failed == 0
    (row,) = items(client, "servers", name="web-1")
    assert (row["site"], row["status"], row["remote_id"]) == ("site-0002", "ACTIVE", server.id)
    assert row["ips"] and row["ips"][0].startswith("10.9.0.") and not row["stale"]
    assert items(client, "servers", ip=row["ips"][0])[0]["remote_id"] == server.id
    assert items(client, "ports", ip=row["ips"][0])[0]["data"]["device_id"] == server.id
    assert {n["name"] for n in items(client, "networks", site="site-0002")} >= {"net-web-1"}
    assert items(client, "flavors", site="site-0001", name="m1.small")
    assert items(client, "hypervisors", site="site-0003")[0]["data"]["vcpus"] > 0
    # the search box's q: a name substring, an id prefix or an exact IP, the same row each time
    for words in ("EB-1", server.id[:8], row["ips"][0]):
        assert [r["remote_id"] for r in items(client, "servers", q=words)] == [server.id], words
    assert items(client, "servers", q=server.id[1:9]) == [], "an id matches from its start only"
    assert items(client, "servers", q=row["ips"][0].rsplit(".", 1)[0]) == [], "an IP matches whole"
    assert items(client, "servers", q="   ") != [], "a blank search is no search"
    refused = client.get("/v1/inventory/servers", params={"q": "web\x01"})
    assert refused.status_code == 400 and "control character" in refused.json()["detail"], refused.text
    assert client.get("/v1/inventory/servers", params={"q": "x" * 256}).status_code == 422

    # Behind Skyfleet's back: the server goes ERROR, a volume appears, then the server is deleted.
    sim.state("site-0002").nova.servers[server.id].update(status="ERROR", _updated=time.time())
    volume = demo.block_storage.create_volume(size=1, name="data-1")
    report = refresh(runtime)
    assert report.full == 0 and report.counts.updated >= 1
    assert items(client, "servers", name="web-1", status="ERROR")
    assert any(v["remote_id"] == volume.id for v in items(client, "volumes", site="site-0002"))
    status_events = events_of(client, "inventory.status")
    assert any(e["details"]["remote_id"] == server.id and e["details"]["to"] == "ERROR" for e in status_events)

    demo.compute.delete_server(server.id)
    demo.block_storage.delete_volume(volume.id)
    refresh(runtime)
    assert items(client, "servers", name="web-1") == []
    assert all(v["remote_id"] != volume.id for v in items(client, "volumes"))
    gone = {e["details"]["remote_id"] for e in events_of(client, "inventory.deleted")}
    assert {server.id, volume.id} <= gone


def test_unchanged_site_costs_a_few_calls(sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, _ = fleet
    refresh(runtime)
    sim.reset_counters()
    report = refresh(runtime)
    assert report.full == 0 and report.counts.created == report.counts.updated == report.counts.deleted == 0
    for name in SITES:
        assert sum(sim.counters(name).values()) <= 4, sim.counters(name)  # servers, volumes (+ids), a token


def test_offline_site_keeps_rows_marked_stale(sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    refresh(runtime)
    before = items(client, "flavors", site="site-0003")
    assert before and not before[0]["stale"]
    sim.set_faults("site-0003", down=True)
    report = refresh(runtime, full=True)
    assert report.failed == 1
    after = items(client, "flavors", site="site-0003")
    assert [r["remote_id"] for r in after] == [r["remote_id"] for r in before]
    with runtime.factory() as session:  # the health audit would have marked it offline
        from skyfleet.domains.sites.models import Site

        site = session.query(Site).filter_by(name="site-0003").one()
        site.availability = "offline"
        session.commit()
    stale = items(client, "flavors", site="site-0003")
    assert stale[0]["stale"] and stale[0]["age_seconds"] is not None
    summary = client.get("/v1/inventory/summary").json()
    entry = next(s for s in summary["sites"] if s["site"] == "site-0003")
    assert entry["stale"] and entry["last_error"]


def test_tenants_see_only_their_project(sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    demo = connect(sim, "site-0001")
    boot(demo, "tenant-vm")
    admin = connect(sim, "site-0001", user="admin")
    boot(admin, "admin-vm")
    refresh(runtime)
    demo_project = demo.current_project_id
    tenant = Principal(user_id="u", user_name="demo", project_id=demo_project, project_name="demo",
                       roles=("member",))
    client.app.dependency_overrides[get_principal] = lambda: tenant  # type: ignore[attr-defined]
    try:
        names = {r["name"] for r in items(client, "servers")}
        assert "tenant-vm" in names and "admin-vm" not in names
        assert client.get("/v1/inventory/servers", params={"project": "someone-else"}).status_code == 403
        summary = client.get("/v1/inventory/summary").json()
        assert summary["capacity"] is None and summary["totals"]["servers"]
        assert client.post("/v1/inventory/refresh").status_code == 403
        live = items(client, "servers", site="site-0001", live="true")
        assert {r["name"] for r in live} == names and all(r["live"] for r in live)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert "admin-vm" in {r["name"] for r in items(client, "servers")}


def test_bad_input_is_a_4xx_with_the_reason(fleet: tuple[Runtime, TestClient]) -> None:
    _, client = fleet
    for path, params, status, words in [
        ("/v1/inventory/gizmos", {}, 400, "unknown inventory kind"),
        ("/v1/inventory/servers", {"sort": "colour"}, 400, "cannot sort"),
        ("/v1/inventory/servers", {"selector": "a b=c"}, 400, "selector"),
        ("/v1/inventory/servers", {"updated_since": "2026-01-01T00:00:00"}, 400, "time zone"),
        ("/v1/inventory/servers", {"live": "true"}, 400, "one site"),
        ("/v1/inventory/servers", {"site": "nowhere"}, 404, "nowhere"),
        ("/v1/inventory/servers", {"limit": 0}, 422, "limit"),
    ]:
        response = client.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert words in response.text


def test_summary_counts_and_capacity(sim: Simulator, fleet: tuple[Runtime, TestClient]) -> None:
    runtime, client = fleet
    boot(connect(sim, "site-0003"), "counted")
    refresh(runtime)
    summary = client.get("/v1/inventory/summary").json()
    site3 = next(s for s in summary["sites"] if s["site"] == "site-0003")
    assert site3["counts"]["servers"]["ACTIVE"] >= 1
    assert summary["totals"]["servers"]["ACTIVE"] >= site3["counts"]["servers"]["ACTIVE"]
    assert summary["capacity"]["vcpus"] == sum(s["capacity"]["vcpus"] for s in summary["sites"] if s["capacity"])
    assert 0 < site3["utilization"]["vcpus"] <= 1
    assert client.post("/v1/inventory/refresh", params={"full": "true"}).json() == {
        "scheduled": "inventory-full-refresh"}


def test_cli_lists_and_summarises(sim: Simulator, runtime_factory: Callable[..., Runtime],
                                  live_server: Callable[[Runtime], str]) -> None:
    from tests.functional.test_cli import cli

    runtime = runtime_factory()
    register_sites(runtime.factory, runtime.box, sim, SITES[:2])
    boot(connect(sim, "site-0001"), "cli-vm")
    refresh(runtime)
    url = live_server(runtime)
    code, out = cli(url, "--format", "json", "inventory", "list", "servers", "--name", "cli-vm")
    assert code == 0, out
    (row,) = json.loads(out)
    assert (row["site"], row["status"]) == ("site-0001", "ACTIVE")
    code, out = cli(url, "--format", "json", "inventory", "list", "servers", "-q", row["remote_id"][:8])
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["cli-vm"], out  # the search: an id prefix
    code, out = cli(url, "--format", "json", "inventory", "summary")
    assert code == 0 and json.loads(out)["totals"]["servers"]["ACTIVE"] >= 1
    code, out = cli(url, "inventory", "summary")
    assert code == 0 and "site-0001" in out
    code, out = cli(url, "inventory", "list", "gizmos")
    assert code == 1 and "unknown inventory kind" in out
    code, out = cli(url, "inventory", "refresh", "--full")
    assert code == 0 and "inventory-full-refresh" in out


def test_tenant_sees_its_project_on_sites_that_share_nothing(sim: Simulator,
                                                            fleet: tuple[Runtime, TestClient]) -> None:
    """site-0002 has its own Keystone: the demo project there has another id, joined by the mapping."""
    from skyfleet.db.engine import transaction
    from skyfleet.domains.projects import service as projects
    from skyfleet.domains.sites import service as sites

    runtime, client = fleet
    home, other = connect(sim, "site-0001"), connect(sim, "site-0002")
    boot(home, "home-vm")
    boot(other, "away-vm")
    boot(connect(sim, "site-0003"), "unmapped-vm")
    refresh(runtime)
    home_project, other_project = home.current_project_id, other.current_project_id
    assert home_project != other_project
    tenant = Principal(user_id="u", user_name="demo", project_id=home_project, project_name="demo",
                       roles=("member",))
    client.app.dependency_overrides[get_principal] = lambda: tenant  # type: ignore[attr-defined]
    try:
        assert {"home-vm"} <= {r["name"] for r in items(client, "servers")}
        assert "away-vm" not in {r["name"] for r in items(client, "servers")}
        with transaction(runtime.factory) as session:
            site_id = sites.get_site(session, "site-0002").id
            projects.set_mapping(session, project_id=home_project, site_id=site_id,
                                 remote_project_id=other_project)
        names = {r["name"] for r in items(client, "servers")}
        assert {"home-vm", "away-vm"} <= names and "unmapped-vm" not in names
        assert sum(client.get("/v1/inventory/summary").json()["totals"]["servers"].values()) >= 2
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
