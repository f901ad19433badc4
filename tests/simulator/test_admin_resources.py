"""GET /_sim/resources: how many sites hold a named resource, read from the simulator's own state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from skyfleet.simulator import Simulator

from .conftest import connect


@pytest.fixture()
def rsim() -> Iterator[Simulator]:
    with Simulator(3) as running:
        yield running


def held(sim: Simulator, kind: str, name: str) -> dict[str, object]:
    answer = requests.get(f"{sim.base_url}/_sim/resources", params={"kind": kind, "name": name}, timeout=5)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_counts_the_sites_that_hold_a_keypair_of_any_user(rsim: Simulator) -> None:
    assert held(rsim, "keypairs", "deploy") == {"kind": "keypairs", "name": "deploy", "holding": 0, "sites": 3}
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFb8Xh0Ud6oGTc6a7h8bXr0S7kUd3DLBHvH8cS8nq0yq test"
    connect(rsim, "site-0001").compute.create_keypair(name="deploy", public_key=key)
    connect(rsim, "site-0003", user="demo").compute.create_keypair(name="deploy", public_key=key)
    connect(rsim, "site-0002").compute.create_keypair(name="other", public_key=key)
    assert held(rsim, "keypairs", "deploy")["holding"] == 2
    assert held(rsim, "flavors", "m1.small")["holding"] == 3  # seeded on every site
    assert held(rsim, "security_groups", "web")["holding"] == 0


def test_unknown_kind_or_missing_name_is_400(rsim: Simulator) -> None:
    base = f"{rsim.base_url}/_sim/resources"
    unknown = requests.get(base, params={"kind": "servers", "name": "x"}, timeout=5)
    assert unknown.status_code == 400
    assert "keypairs" in unknown.json()["error"]["message"]
    assert requests.get(base, params={"kind": "keypairs"}, timeout=5).status_code == 400
