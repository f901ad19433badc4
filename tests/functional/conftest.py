"""Fixtures for functional tests: simulated sites over real HTTP, and a live Skyfleet server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(sites=6)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _healthy_fleet(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").clear_faults()


def site_auth(sim: Simulator, name: str, user: str = "admin") -> dict[str, Any]:
    cloud = sim.cloud(name, user=user)
    auth = dict(cloud["auth"])
    auth["region_name"] = cloud.get("region_name")
    auth["interface"] = cloud.get("interface", "public")
    return auth


def token_for(sim: Simulator, site: str, user: str) -> str:
    """A token of ``user`` from the simulated site's Keystone (a site acting as the home Keystone)."""
    auth = site_auth(sim, site, user=user)
    plugin = v3.Password(**{k: auth[k] for k in ("auth_url", "username", "password", "project_name",
                                                  "user_domain_name", "project_domain_name")})
    token: str = ks_session.Session(auth=plugin).get_token()
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def live_server() -> Iterator[Callable[..., str]]:
    """Serve a runtime's app with uvicorn on a free port; returns its URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(runtime: Runtime, workers: bool = False) -> str:
        port = free_port()
        config = uvicorn.Config(create_app(runtime, start_workers=workers), host="127.0.0.1", port=port,
                                log_config=None, access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
