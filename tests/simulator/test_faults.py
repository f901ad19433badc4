"""Faults as openstacksdk sees them, switched from Python and over the /_sim/ admin endpoint; counters."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import keystoneauth1.exceptions
import openstack.exceptions
import pytest
import requests

from skyfleet.simulator import Simulator

from .conftest import connect


@pytest.fixture()
def fsim() -> Iterator[Simulator]:
    with Simulator(2) as running:
        yield running


def test_down_site_refuses_while_others_serve(fsim: Simulator) -> None:
    fsim.set_faults("site-0001", down=True)
    with pytest.raises(openstack.exceptions.SDKException, match="Unable to establish connection"):
        connect(fsim, "site-0001").authorize()
    assert connect(fsim, "site-0002").authorize()
    assert fsim.counters("site-0001") == {}  # a down site receives nothing
    fsim.clear_faults("site-0001")
    assert connect(fsim, "site-0001").authorize()


def test_hang_until_client_timeout(fsim: Simulator) -> None:
    conn = connect(fsim, "site-0001", api_timeout=0.3)
    conn.authorize()
    fsim.set_faults("site-0001", hang=True)
    started = time.monotonic()
    with pytest.raises(keystoneauth1.exceptions.ConnectTimeout):
        list(conn.compute.flavors())
    assert time.monotonic() - started >= 0.3
    fsim.clear_faults()
    assert list(conn.compute.flavors())


def test_latency_and_jitter(fsim: Simulator) -> None:
    url = f"{fsim.base_url}/site-0001/compute/"
    fsim.set_faults("site-0001", latency_ms=150, jitter_ms=50)
    started = time.monotonic()
    requests.get(url, timeout=5)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0
    fsim.set_faults("site-0001", latency_ms=0, jitter_ms=0)
    started = time.monotonic()
    requests.get(url, timeout=5)
    assert time.monotonic() - started < 0.15


def test_error_rate_answers_503_in_service_shape(fsim: Simulator) -> None:
    conn = connect(fsim, "site-0001")
    conn.authorize()
    fsim.set_faults("site-0001", error_rate=1.0)
    with pytest.raises(openstack.exceptions.HttpException) as info:
        list(conn.network.networks())
    assert info.value.status_code == 503
    resp = requests.get(f"{fsim.base_url}/site-0001/compute/v2.1/flavors", timeout=5)
    assert resp.status_code == 503 and resp.json()["serviceUnavailable"]["code"] == 503
    fsim.set_faults("site-0001", error_rate=0.5)
    codes = [requests.get(f"{fsim.base_url}/site-0001/compute/", timeout=5).status_code for _ in range(60)]
    assert 5 < codes.count(503) < 55 and codes.count(200) + codes.count(503) == 60


def test_auth_failure(fsim: Simulator) -> None:
    fsim.set_faults("site-0002", auth_fail=True)
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        connect(fsim, "site-0002").authorize()
    fsim.set_faults("site-0002", auth_fail=False)
    assert connect(fsim, "site-0002").authorize()


def test_slow_image_download(fsim: Simulator) -> None:
    conn = connect(fsim, "site-0001")
    image = conn.image.create_image(name="slow", data=io.BytesIO(b"z" * 40_000), disk_format="raw",
                                    container_format="bare", allow_duplicates=True)
    fsim.set_faults("site-0001", slow_image_bps=100_000)
    started = time.monotonic()
    out = io.BytesIO()
    conn.image.download_image(image, output=out)
    assert out.getvalue() == b"z" * 40_000
    assert time.monotonic() - started >= 0.35


def test_quota_exceeded_fault_on_every_create(fsim: Simulator) -> None:
    conn = connect(fsim, "site-0001")
    fsim.set_faults("site-0001", quota_exceeded=True)
    with pytest.raises(openstack.exceptions.ConflictException, match="Quota exceeded"):
        conn.network.create_network(name="n")
    with pytest.raises(openstack.exceptions.HttpException) as info:
        conn.block_storage.create_volume(size=1)
    assert info.value.status_code == 413
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Quota exceeded"):
        conn.compute.create_keypair(name="k", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== ci")
    assert list(conn.network.networks(name="n")) == []


def test_counters_count_each_write_once(fsim: Simulator) -> None:
    conn = connect(fsim, "site-0001")
    fsim.reset_counters()
    for i in range(3):
        conn.network.create_network(name=f"n{i}")
    counts = fsim.counters("site-0001")
    assert counts[("POST", "/network/v2.0/networks")] == 3
    assert fsim.count("site-0001", "POST", "/network/") == 3
    assert fsim.counters("site-0002") == {}
    fsim.reset_counters("site-0001")
    assert fsim.counters("site-0001") == {}


def test_admin_endpoint(fsim: Simulator) -> None:
    base = f"{fsim.base_url}/_sim"
    sites = requests.get(f"{base}/sites", timeout=5).json()["sites"]
    assert [s["name"] for s in sites] == ["site-0001", "site-0002"]
    put = requests.put(f"{base}/sites/site-0002/faults", json={"error_rate": 1.0, "latency_ms": 5}, timeout=5)
    assert put.status_code == 200 and put.json()["error_rate"] == 1.0
    assert fsim.faults("site-0002").latency_ms == 5
    assert requests.get(f"{fsim.base_url}/site-0002/image/", timeout=5).status_code == 503
    counters = requests.get(f"{base}/sites/site-0002/counters", timeout=5).json()
    assert counters["total"] == 1 and counters["counters"][0]["path"] == "/image/"
    assert requests.put(f"{base}/sites/site-0002/faults", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.delete(f"{base}/sites/site-0002/faults", timeout=5).status_code == 204
    assert requests.get(f"{fsim.base_url}/site-0002/image/", timeout=5).status_code == 300
    added = requests.post(f"{base}/sites", json={"name": "edge-1"}, timeout=5)
    assert added.status_code == 201
    cloud = requests.get(f"{base}/sites/edge-1/cloud", timeout=5).json()
    assert openstack.connect(load_yaml_config=False, load_envvars=False, **cloud).authorize()
    assert requests.get(f"{base}/sites/nope/counters", timeout=5).status_code == 404


def test_set_faults_rejects_unknown_names(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_faults("site-0001", explode=True)
    with pytest.raises(KeyError):
        sim.set_faults("nope", down=True)


