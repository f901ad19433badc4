"""Images declared from an http(s) URL: only URLs on the admin's allow-list are accepted, the bytes are
streamed from the URL to each target and the copy must hold exactly what was sent (or the hashes the
declaration names); a redirect is not followed; a URL answering 404 fails the copy with the reason."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from skyfleet.api.runtime import Runtime
from tests.engine_support import Fleet, simulated_fleet
from tests.functional.test_images_on_simulator import bindings, images_named, run

BODY = os.urandom(1_500_000)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved.img":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest")
            self.end_headers()
            return
        if self.path != "/disk.img":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime], db_url: str, web: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=2, image_url_allow=f"{web}/") as made:
        yield made


def test_a_url_image_is_streamed_to_every_site_and_checked(fleet: Any, web: str) -> None:
    sim, runtime, client, engine = fleet
    refused = client.post("/v1/images", json={"name": "far", "source": {"url": "https://example.net/x.img"},
                                              "disk_format": "raw", "container_format": "bare"})
    assert refused.status_code == 400 and "allow-list" in refused.json()["detail"]
    no_format = client.post("/v1/images", json={"name": "far", "source": {"url": f"{web}/disk.img"}})
    assert no_format.status_code == 400 and "disk_format" in no_format.json()["detail"]
    made = client.post("/v1/images", json={"name": "web-img", "source": {"url": f"{web}/disk.img"},
                                           "disk_format": "raw", "container_format": "bare"})
    assert made.status_code == 202, made.text
    run(runtime, engine)
    assert {b["status"] for b in bindings(client, "web-img").values()} == {"in-sync"}
    for site in sim.site_names():
        [copy] = images_named(sim, site, "web-img")
        assert copy["checksum"] == hashlib.md5(BODY).hexdigest() and copy["size"] == len(BODY)


def test_declared_hashes_must_match_and_redirects_and_404s_fail(fleet: Any, web: str) -> None:
    sim, runtime, client, engine = fleet
    site = sim.site_names()[0]
    raw = {"disk_format": "raw", "container_format": "bare", "placement": {"sites": [site]}}
    client.post("/v1/images", json={"name": "wrong-sum", "source": {"url": f"{web}/disk.img",
                                                                    "checksum": "0" * 32}, **raw})
    client.post("/v1/images", json={"name": "moved", "source": {"url": f"{web}/moved.img"}, **raw})
    client.post("/v1/images", json={"name": "missing", "source": {"url": f"{web}/none.img"}, **raw})
    run(runtime, engine, rounds=8)
    wrong = bindings(client, "wrong-sum")[site]
    assert wrong["status"] == "failed" and "verification failed" in wrong["error"]
    assert "redirects are not followed" in bindings(client, "moved")[site]["error"]
    assert "HTTP 404" in bindings(client, "missing")[site]["error"]
    for name in ("wrong-sum", "moved", "missing"):
        assert images_named(sim, site, name) == []  # nothing half-made is left
