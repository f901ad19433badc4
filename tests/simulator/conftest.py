"""Fixtures for the simulator's own tests: a running simulator and openstacksdk connections to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest

from skyfleet.simulator import Simulator

Connect = Callable[..., Any]


def connect(sim: Simulator, site: str, *, user: str = "admin", **extra: Any) -> Any:
    """A real openstacksdk connection to a simulated site (no clouds.yaml or environment involved)."""
    return openstack.connect(load_yaml_config=False, load_envvars=False, **{**sim.cloud(site, user=user), **extra})


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(3, boot_delay=0.2) as running:
        yield running


@pytest.fixture()
def conn(sim: Simulator) -> Any:
    return connect(sim, "site-0001")


@pytest.fixture()
def demo(sim: Simulator) -> Any:
    return connect(sim, "site-0001", user="demo")
