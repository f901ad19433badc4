"""The simulator tells a write that took effect (2xx) from one it refused or never applied."""

from __future__ import annotations

import openstack.exceptions
import pytest

from skyfleet.simulator import Simulator
from tests.simulator.conftest import connect

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq test"


def test_answered_counts_statuses_per_request(sim: Simulator) -> None:
    site = "site-0002"
    sim.reset_counters(site)
    conn = connect(sim, site)
    conn.compute.create_keypair(name="answered-k", public_key=PUBLIC_KEY)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.create_keypair(name="answered-k", public_key=PUBLIC_KEY)
    path = "/compute/v2.1/os-keypairs"
    assert sim.count(site, "POST", path) == 2
    assert sim.answered(site, "POST", path) == 1
    assert sim.answered(site, "POST", path, statuses=range(409, 410)) == 1
    sim.set_faults(site, error_rate=1.0, services=["compute"])
    try:
        with pytest.raises(openstack.exceptions.HttpException):
            conn.compute.create_keypair(name="answered-k2", public_key=PUBLIC_KEY)
    finally:
        sim.clear_faults(site)
    assert sim.answered(site, "POST", path) == 1
    assert sim.answered(site, "POST", path, statuses=range(503, 504)) >= 1
    conn.compute.delete_keypair("answered-k")
    sim.reset_counters(site)
    assert sim.answered(site, "POST", path) == 0
