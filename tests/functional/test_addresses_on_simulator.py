"""The address view on simulated sites, as a user meets it: networks, subnets, servers, routers and
floating IPs made through openstacksdk behind Skyfleet's back show up in ``skyfleet address list``
after the next inventory refresh (v4 and v6, with MACs and server names); a subnet made by hand on
a second site inside the first site's range is a conflict of their routing domain, raised as an
event, and cleared when the subnet is deleted; a public IP is never counted twice."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.reconcile.inventory import RefreshReport, refresh_fleet
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

SITES = ["site-0004", "site-0005"]
runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def cli_json(url: str, *args: str) -> Any:
    code, out = cli(url, *args, "--format", "json")
    assert code == 0, out
    return json.loads(out)


def connect(sim: Simulator, site: str, user: str = "demo") -> Any:
    return openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site, user=user))


@pytest.fixture
def served(sim: Simulator, runtime_factory: Callable[..., Runtime],
           live_server: Callable[..., str]) -> Iterator[tuple[Runtime, str]]:
    runtime = runtime_factory(inventory_interval=30)
    register_sites(runtime.factory, runtime.box, sim, SITES)
    yield runtime, live_server(runtime)


def refresh(runtime: Runtime) -> RefreshReport:
    return refresh_fleet(runtime.factory, box=runtime.box, concurrency=4, timeout=5, full=True)


def network(conn: Any, name: str, v4: str, v6: str | None = None) -> tuple[Any, Any]:
    net = conn.network.create_network(name=name)
    subnet = conn.network.create_subnet(network_id=net.id, cidr=v4, ip_version=4, name=f"{name}-v4")
    if v6:
        conn.network.create_subnet(network_id=net.id, cidr=v6, ip_version=6, name=f"{name}-v6")
    return net, subnet


def test_addresses_routing_domain_and_conflict_lifecycle(sim: Simulator, served: tuple[Runtime, str]) -> None:
    runtime, url = served
    paris, lyon = connect(sim, SITES[0]), connect(sim, SITES[1])
    net1, _ = network(paris, "app-paris", "10.200.1.0/24", "fd00:200:1::/64")
    port = paris.network.create_port(network_id=net1.id, name="vm-port")
    image = paris.image.create_image(name="img", data=io.BytesIO(b"boot" * 64), disk_format="qcow2",
                                     container_format="bare", allow_duplicates=True)
    server = paris.compute.create_server(name="web-paris", image_id=image.id, flavor_id="1",
                                         networks=[{"port": port.id}])
    paris.compute.wait_for_server(server, wait=10, interval=0.05)
    admin = connect(sim, SITES[0], user="admin")
    public = admin.network.create_network(name="public", is_router_external=True)
    admin.network.create_subnet(network_id=public.id, cidr="198.51.100.0/24", ip_version=4)
    router = paris.network.create_router(name="edge", external_gateway_info={"network_id": public.id})
    floating = paris.network.create_ip(floating_network_id=public.id, port_id=port.id)
    net2, _ = network(lyon, "app-lyon", "10.200.2.0/24")
    lyon_port = lyon.network.create_port(network_id=net2.id, name="bare")
    report = refresh(runtime)
    assert report.failed == 0 and report.address_sites == 2

    mine = cli_json(url, "address", "list", "--device", "web-paris")
    assert {r["ip"] for r in mine} == {*(f["ip_address"] for f in port.fixed_ips), floating.floating_ip_address}
    v6 = next(r for r in mine if r["ip_version"] == 6)
    assert v6["mac"] == port.mac_address and v6["device_id"] == server.id and v6["subnet_cidr"] == "fd00:200:1::/64"
    (gateway,) = cli_json(url, "address", "list", "--kind", "gateway", "--site", SITES[0])
    assert gateway["device_name"] == "edge" and gateway["device_id"] == router.id
    # Each simulated Neutron counts MACs from the same base, as sites left on Neutron's default
    # base_mac may collide: the search by MAC finds the address on both sites
    same_mac = cli_json(url, "address", "list", "--mac", port.mac_address.upper(), "--version", "4")
    assert {(r["site"], r["port_id"]) for r in same_mac} == {(SITES[0], port.id), (SITES[1], lyon_port.id)}
    assert [r["ip"] for r in cli_json(url, "address", "list", "--ip", lyon_port.fixed_ips[0]["ip_address"])] == [
        lyon_port.fixed_ips[0]["ip_address"]]
    code, out = cli(url, "address", "list", "--cidr", "10.200.0.0/16", "--csv")
    assert code == 0 and {r["site"] for r in csv.DictReader(io.StringIO(out))} == set(SITES)
    code, out = cli(url, "address", "list", "--cidr", "10.200.0.1/16")
    assert code != 0 and "did you mean 10.200.0.0/16" in out
    summary = cli_json(url, "address", "summary", "--site", SITES[0])
    assert any(s["cidr"] == "fd00:200:1::/64" and isinstance(s["free"], str) for s in summary["subnets"])

    domain = cli_json(url, "routing-domain", "create", "vpn", "-m", f"{SITES[0]}/{net1.id}",
                      "-m", f"{SITES[1]}/{net2.id}")
    assert domain["networks"] == 2 and domain["conflicts"] == 1  # the shared MAC, now that they route together
    (mac,) = cli_json(url, "address", "conflicts")
    assert mac["kind"] == "duplicate_mac" and {m["site"] for m in mac["members"]} == set(SITES)
    rogue = lyon.network.create_subnet(network_id=net2.id, cidr="10.200.1.128/25", ip_version=4, name="by-hand")
    refresh(runtime)
    (conflict,) = cli_json(url, "address", "conflicts", "--kind", "overlapping_subnets")
    assert {m["cidr"] for m in conflict["members"]} == {"10.200.1.0/24", "10.200.1.128/25"}
    raised = cli_json(url, "events", "--kind", "address.conflict")
    assert {e["details"]["key"] for e in raised} == {conflict["key"], mac["key"]}
    # One address, every row of it and the conflicts it is part of
    v4 = next(f["ip_address"] for f in port.fixed_ips if ":" not in f["ip_address"])
    shown = cli_json(url, "address", "show", v4)
    (row,) = shown["addresses"]
    assert (row["site"], row["kind"], row["network_id"], row["subnet_cidr"], row["port_id"], row["device_name"],
            row["mac"], row["stale"]) == (SITES[0], "fixed", net1.id, "10.200.1.0/24", port.id, "web-paris",
                                          port.mac_address, False)
    assert row["observed_at"] and set(row["conflicts"]) == {conflict["key"], mac["key"]}
    assert {c["key"] for c in shown["conflicts"]} == {conflict["key"], mac["key"]}
    code, out = cli(url, "address", "show", v4)
    assert code == 0 and "duplicate_mac" in out and "overlapping_subnets" in out
    public_ip = cli_json(url, "address", "show", floating.floating_ip_address)
    assert [(r["kind"], r["device_name"], r["conflicts"]) for r in public_ip["addresses"]] == [
        ("floating", "web-paris", [])] and public_ip["conflicts"] == []
    code, out = cli(url, "address", "show", "192.0.2.77")
    assert code != 0 and "no address 192.0.2.77" in out
    code, out = cli(url, "address", "show", "10.200.1")
    assert code != 0 and "not" in out
    refresh(runtime)  # still there: no second event
    assert len(cli_json(url, "events", "--kind", "address.conflict")) == 2

    lyon.network.delete_subnet(rogue)
    refresh(runtime)
    assert [c["kind"] for c in cli_json(url, "address", "conflicts")] == ["duplicate_mac"]
    cleared = cli_json(url, "events", "--kind", "address.conflict_cleared")
    assert [e["details"]["key"] for e in cleared] == [conflict["key"]]
    code, out = cli(url, "routing-domain", "list")
    assert code == 0 and "vpn" in out
    assert cli(url, "routing-domain", "delete", "vpn")[0] == 0


def test_pools_from_the_cli(served: tuple[Runtime, str]) -> None:
    _, url = served
    assert cli_json(url, "pool", "create", "wan", "10.200.0.0/16", "--shared")["project_id"] is None
    first = cli_json(url, "pool", "allocate", "wan", "--site", SITES[0], "-l", "24")
    second = cli_json(url, "pool", "allocate", "wan", "--site", SITES[1], "-l", "24")
    assert (first["cidr"], second["cidr"]) == ("10.200.0.0/24", "10.200.1.0/24")
    assert [a["site"] for a in cli_json(url, "pool", "allocations", "wan")] == SITES
    code, out = cli(url, "pool", "allocate", "wan", "--site", SITES[0], "-l", "8")
    assert code != 0 and "outside 16..32" in out
    assert cli(url, "pool", "delete", "wan")[0] != 0  # still has allocations
    for allocation in (first, second):
        assert cli(url, "pool", "release", "wan", str(allocation["id"]))[0] == 0
    assert cli(url, "pool", "delete", "wan")[0] == 0
    assert cli_json(url, "pool", "list") == []
