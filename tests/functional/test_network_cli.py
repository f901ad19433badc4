"""The network CLI against a live server: a pool, a network declared once on two simulated sites with
``skyfleet network create``, each site's prefix in ``show``, converged, listed, deleted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openstack
from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def test_network_commands(sim: Simulator, live_server: Callable[[Runtime], str],
                          runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    names = sim.site_names()[:2]
    register_sites(runtime.factory, runtime.box, sim, names)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    url = live_server(runtime)
    code, out = cli(url, "pool", "create", "cli-wan", "10.70.0.0/23")
    assert code == 0, out
    code, out = cli(url, "network", "create", "cli-net", "--pool", "cli-wan", "-l", "24", "--site", names[0],
                    "--site", names[1], "--dns", "192.0.2.53", "--no-router", "--format", "json")
    assert code == 0, out
    cidrs = sorted(p["cidr"] for p in json.loads(out)["options"]["prefixes"].values())
    assert cidrs == ["10.70.0.0/24", "10.70.1.0/24"]
    code, out = cli(url, "network", "create", "cli-more", "--pool", "cli-wan", "--site", names[0])
    assert code != 0 and "no free /24 left" in out, out
    code, out = cli(url, "network", "create", "cli-bad", "--pool", "cli-wan", "--dns", "not-an-ip")
    assert code != 0 and "dns_nameservers" in out, out
    engine.run_until_idle()
    code, out = cli(url, "network", "show", "cli-net")
    assert code == 0 and "10.70.0.0/24" in out and "10.70.1.0/24" in out and "in-sync" in out, out
    code, out = cli(url, "network", "list")
    assert code == 0 and "cli-net" in out and "in-sync=2" in out, out
    code, out = cli(url, "network", "delete", "cli-net", "--format", "json")
    assert code == 0 and json.loads(out)["state"] == "deleting", out
    engine.run_until_idle()
    code, out = cli(url, "network", "list", "--format", "json")
    assert code == 0 and json.loads(out) == [], out
    code, out = cli(url, "pool", "allocations", "cli-wan", "--format", "json")
    assert code == 0 and json.loads(out) == [], out
    code, out = cli(url, "network", "create", "cli-fixed", "--cidr", f"{names[0]}=10.71.0.0/24", "--cidr",
                    f"{names[1]}=10.71.1.0/24", "--site", names[0], "--site", names[1], "--format", "json")
    assert code == 0, out
    assert sorted(p["cidr"] for p in json.loads(out)["options"]["prefixes"].values()) == ["10.71.0.0/24",
                                                                                          "10.71.1.0/24"]
    code, out = cli(url, "network", "create", "cli-bad", "--cidr", f"{names[0]}=10.71.0.1/24", "--site", names[0])
    assert code != 0 and "host bits set" in out, out
    code, out = cli(url, "network", "create", "cli-bad", "--cidr", "10.71.0.0/24", "--site", names[0])
    assert code != 0 and "SITE=CIDR" in out, out
    code, out = cli(url, "network", "create", "cli-again", "--cidr", f"{names[1]}=10.71.0.0/25", "--site", names[1])
    assert code != 0 and "overlaps 10.71.0.0/24 of the network 'cli-fixed'" in out, out
    code, out = cli(url, "network", "create", "cli-again", "--cidr", f"{names[1]}=10.71.0.0/25", "--site", names[1],
                    "--allow-overlap", "--format", "json")
    assert code == 0 and json.loads(out)["options"]["allow_overlap"] is True, out


def test_dual_stack_internal_group_mesh_and_purge_commands(sim: Simulator, live_server: Callable[[Runtime], str],
                                                           runtime_factory: Callable[..., Runtime],
                                                           tmp_path: Path) -> None:
    """A dual-stack network with its internal group, meshed (the key from a file, shown nowhere), its
    key rotated (from another file), then unmeshed, and deleted with --purge."""
    runtime = runtime_factory()
    names = sim.site_names()[:2]
    register_sites(runtime.factory, runtime.box, sim, names)
    for name in names:
        admin = openstack.connect(**sim.cloud(name))
        ext = admin.network.create_network(name="public", is_router_external=True)
        admin.network.create_subnet(network_id=ext.id, ip_version=4, cidr="198.51.100.0/24", enable_dhcp=False)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    url = live_server(runtime)
    assert cli(url, "pool", "create", "v4", "10.74.0.0/23")[0] == 0
    assert cli(url, "pool", "create", "v6", "fd00:74::/48")[0] == 0
    code, out = cli(url, "network", "create", "ds", "--pool", "v4", "--second-pool", "v6", "--allow-internal",
                    "--external-network", "public", "--site", names[0], "--site", names[1], "--format", "json")
    assert code == 0, out
    held = json.loads(out)["options"]["prefixes"].values()
    assert all(h["cidr2"].startswith("fd00:74:") for h in held)
    engine.run_until_idle()
    assert cli(url, "routing-domain", "create", "rd")[0] == 0
    key = tmp_path / "psk"
    key.write_text("cli-mesh-key-0123456789\n")
    code, out = cli(url, "routing-domain", "mesh", "rd", "--network", "ds", "--psk-file", str(key))
    assert code == 0 and "cli-mesh-key" not in out, out
    engine.run_until_idle()
    code, out = cli(url, "routing-domain", "mesh-show", "rd")
    assert code == 0 and out.count("in-sync") == 2 and "cli-mesh-key" not in out, out
    for name in names:  # dual stack: meshed in the gateways' IP version only (VPNaaS refuses mixed versions)
        groups = openstack.connect(**sim.cloud(name)).network.get("/vpn/endpoint-groups").json()["endpoint_groups"]
        peers = [g for g in groups if g["type"] == "cidr"]
        assert len(peers) == 1 and [c.startswith("10.74.") for c in peers[0]["endpoints"]] == [True], groups
    new = tmp_path / "new-psk"
    new.write_text("cli-rotated-key-9876543210\n")
    code, out = cli(url, "routing-domain", "rotate-key", "rd", "--psk-file", str(new))
    assert code == 0 and out.count(" old ") == 2 and "cli-rotated-key" not in out, out
    engine.run_until_idle()
    code, out = cli(url, "routing-domain", "mesh-show", "rd")
    assert code == 0 and out.count("current") == 2 and "cli-rotated-key" not in out, out
    for name in names:
        links = openstack.connect(**sim.cloud(name)).network.get("/vpn/ipsec-site-connections").json()
        assert [c["psk"] for c in links["ipsec_site_connections"]] == ["cli-rotated-key-9876543210"]
    code, out = cli(url, "network", "delete", "ds")
    assert code != 0 and "delete the mesh first" in out, out
    assert cli(url, "routing-domain", "unmesh", "rd")[0] == 0
    engine.run_until_idle()
    code, out = cli(url, "routing-domain", "mesh-show", "rd")
    assert code != 0 and "not meshed" in out, out
    code, out = cli(url, "network", "delete", "ds", "--purge", "--format", "json")
    assert code == 0 and json.loads(out)["state"] == "deleting", out
