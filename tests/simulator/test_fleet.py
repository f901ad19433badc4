"""Fleet shapes: shared-keystone regions, hundreds of sites, sites added at run time, clouds.yaml, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openstack
import openstack.config
import openstack.connection
import pytest
import yaml

from skyfleet.simulator import Simulator

from .conftest import connect


def test_regions_share_one_keystone() -> None:
    with Simulator(4, regions_per_keystone=2) as sim:
        clouds = sim.clouds_yaml()["clouds"]
        assert clouds["site-0002"]["region_name"] == "RegionTwo"
        assert clouds["site-0002"]["auth"]["auth_url"] == clouds["site-0001"]["auth"]["auth_url"]
        assert clouds["site-0003"]["auth"]["auth_url"].endswith("/site-0003/identity/v3")
        one, two = connect(sim, "site-0001"), connect(sim, "site-0002")
        assert one.current_user_id == two.current_user_id  # the same keystone
        catalog = one.session.auth.get_access(one.session).service_catalog.catalog
        regions = {(svc["type"], e["region_id"]) for svc in catalog for e in svc["endpoints"]}
        assert {("identity", "RegionOne"), ("identity", "RegionTwo"), ("compute", "RegionTwo")} <= regions
        assert {r.id for r in one.identity.regions()} == {"RegionOne", "RegionTwo"}
        two.network.create_network(name="only-in-two")
        assert [n.name for n in two.network.networks()] == ["only-in-two"]
        assert list(one.network.networks()) == []
        assert sim.count("site-0002", "POST", "/network/") == 1
        assert sim.count("site-0001", "POST", "/network/") == 0
        # the third site has its own keystone: its admin is another user
        assert connect(sim, "site-0003").current_user_id != one.current_user_id


def test_two_hundred_sites_served() -> None:
    with Simulator(220) as sim:
        names = sim.site_names()
        assert len(names) == 220 and names[-1] == "site-0220"

        def probe(name: str) -> str:
            conn = connect(sim, name)
            return str(conn.compute.find_flavor("m1.tiny").id)

        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(probe, names)) == {"1"}
        assert all(sim.count(n, "POST", "/identity/v3/auth/tokens") == 1 for n in names)


def test_add_site_at_run_time_and_clouds_yaml(tmp_path: Path) -> None:
    with Simulator(1) as sim:
        name = sim.add_site()
        assert name == "site-0002"
        assert sim.add_site("lab") == "lab"
        with pytest.raises(ValueError):
            sim.add_site("lab")
        assert connect(sim, "lab").compute.find_flavor("m1.small") is not None
        path = tmp_path / "clouds.yaml"
        sim.write_clouds_yaml(path)
        doc = yaml.safe_load(path.read_text())
        assert set(doc["clouds"]) == {"site-0001", "site-0002", "lab"}
        entry = doc["clouds"]["lab"]
        assert entry["identity_api_version"] == 3 and entry["interface"] == "public"
        assert entry["auth"]["username"] == "admin" and entry["region_name"] == "RegionOne"
        region = openstack.config.OpenStackConfig(config_files=[str(path)], load_envvars=False).get_one(cloud="lab")
        conn = openstack.connection.Connection(config=region)
        assert conn.identity.find_project("demo") is not None


def test_cli_serves_writes_clouds_yaml_and_stops_on_sigterm(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skyfleet.simulator.cli", "--sites", "3", "--port", "0",
                             "--clouds-yaml", str(clouds), "--regions-per-keystone", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "3 sites listening on http://127.0.0.1:" in first
        for _ in range(4):
            if "wrote" in proc.stdout.readline():
                break
        doc = yaml.safe_load(clouds.read_text())
        cloud = doc["clouds"]["site-0003"]
        assert cloud["region_name"] == "RegionThree"
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **cloud)
        assert conn.compute.find_flavor("m1.tiny") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopping" in out
