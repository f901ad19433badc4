"""Indicators against real OpenStack sites: once the server's own workers (short intervals) have audited
and refreshed site1 and site2, /v1/indicators holds each site's vCPU total as its Nova reports it
to openstacksdk (admin), and a latency and error row per service (Keystone, Nova, Neutron, Glance,
Cinder). The test only reads the API, waiting as a user waits.

Run by testbed/realstack/contract.sh (marker ``realstack``); clouds from ``OS_CLIENT_CONFIG_FILE``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import SiteCreate

pytestmark = pytest.mark.realstack

REAL = ("site1", "site2")
SERVICES = ("identity", "compute", "network", "image", "block-storage")  # Keystone, Nova, Neutron, Glance, Cinder


def nova_vcpus(cloud: dict[str, Any]) -> int:
    """The site's vCPU total from openstacksdk as its admin. Microversion 2.1, as Skyfleet reads it:
    from 2.88 on, Nova's hypervisor list no longer carries the numbers."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **cloud)
    rows = conn.compute.get("/os-hypervisors/detail", microversion="2.1").json()["hypervisors"]
    return sum(int(h["vcpus"]) for h in rows)


def test_workers_sample_capacity_and_per_service_health_of_real_sites(
    clouds: dict[str, Any], runtime_factory: Callable[..., Runtime]
) -> None:
    runtime = runtime_factory(None, None, site_timeout=30, audit_interval=5, inventory_interval=10,
                              inventory_full_interval=3600, sync_audit_interval=3600, quota_interval=3600,
                              indicator_interval=0)
    with transaction(runtime.factory) as session:
        for name in REAL:
            cloud = clouds[name]
            auth = {**cloud["auth"], "region_name": cloud.get("region_name"),
                    "interface": cloud.get("interface", "public")}
            sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(
                {"name": f"real-{name}", "auth": auth})).availability = "online"
    wanted = {(f"real-{s}", n) for s in REAL
              for n in ("capacity.vcpus", "audit.latency_ms", *(f"api.{k}.latency_ms" for k in SERVICES))}
    with TestClient(create_app(runtime, start_workers=True)) as client:
        deadline = time.monotonic() + 180
        while True:
            body = client.get("/v1/indicators", params={"site": "real-site1,real-site2", "since": "15m"}).json()
            found = {(s["site"], s["name"]): s["points"] for s in body["series"]}
            if wanted <= set(found):
                break
            assert time.monotonic() < deadline, f"missing after 180 s: {sorted(wanted - set(found))}"
            time.sleep(2)
    for name in REAL:
        site = f"real-{name}"
        assert found[(site, "capacity.vcpus")][-1][1] == nova_vcpus(clouds[name]), site
        for kind in SERVICES:
            assert found[(site, f"api.{kind}.latency_ms")][-1][1] > 0, (site, kind)
            assert found[(site, f"api.{kind}.error")][-1][1] == 0.0, (site, kind)
