"""Images whose bytes are uploaded through Skyfleet (``PUT /v1/images/{ref}/file``): the body streams
into the seed site, verified, and the engine copies it on; a second upload is a new version; a body
past ``image_upload_max_bytes`` is refused (413) and leaves nothing on the seed; an image with another
kind of source refuses uploads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.engine_support import Fleet, simulated_fleet
from tests.functional.test_images_on_simulator import bindings, images_named, run

LIMIT = 2_000_000


@pytest.fixture
def fleet(runtime_factory: Callable[..., Runtime], db_url: str) -> Iterator[Fleet]:
    with simulated_fleet(runtime_factory, db_url, sites=3, image_upload_max_bytes=LIMIT,
                         max_body_bytes=100_000) as made:
        yield made


def chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_an_upload_goes_to_the_seed_and_on_to_every_site(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    made = client.post("/v1/images", json={"name": "up", "source": {"site": a, "upload": True},
                                           "disk_format": "raw", "container_format": "bare"})
    assert made.status_code == 202 and made.json()["bindings"] == [], made.text  # nothing to copy yet
    data = os.urandom(1_200_000)  # more than max_body_bytes: uploads have their own limit, streamed
    sent = client.put("/v1/images/up/file", content=chunks(data), headers={"Content-Type": "application/octet-stream"})
    assert sent.status_code == 202, sent.text
    run(runtime, engine)
    md5 = hashlib.md5(data).hexdigest()
    for site in (a, b, c):
        assert [i["checksum"] for i in images_named(sim, site, "up")] == [md5], site
    assert {x["status"] for x in bindings(client, "up").values()} == {"in-sync"}

    second = os.urandom(50_000)
    assert client.put("/v1/images/up/file", content=second).status_code == 202  # with a Content-Length
    run(runtime, engine)
    for site in (a, b, c):  # the new version everywhere; the older copies retired
        assert [i["checksum"] for i in images_named(sim, site, "up")] == [hashlib.md5(second).hexdigest()], site


def test_too_large_and_wrong_source_uploads_are_refused(fleet: Any) -> None:
    sim, _runtime, client, _engine = fleet
    a = sim.site_names()[0]
    client.post("/v1/images", json={"name": "big", "source": {"site": a, "upload": True}, "disk_format": "raw",
                                    "container_format": "bare"})
    declared = client.put("/v1/images/big/file", content=os.urandom(LIMIT + 1))
    assert declared.status_code == 413 and "image_upload_max_bytes" in declared.json()["detail"]
    streamed = client.put("/v1/images/big/file", content=chunks(os.urandom(LIMIT + 300_000)))
    assert streamed.status_code == 413 and "image_upload_max_bytes" in streamed.json()["detail"], streamed.text
    assert images_named(sim, a, "big") == []  # nothing half-uploaded stays on the seed
    other = upload_source(sim, a)
    client.post("/v1/images", json={"name": "fixed", "source": {"site": a, "image_id": other}})
    wrong = client.put("/v1/images/fixed/file", content=b"x" * 10)
    assert wrong.status_code == 409 and "not from an upload" in wrong.json()["detail"]
    bad = client.post("/v1/images", json={"name": "bad", "source": {"site": a, "upload": True, "image_id": "x"}})
    assert bad.status_code == 400 and "no image_id" in bad.json()["detail"]


def upload_source(sim: Simulator, site: str) -> str:
    from tests.functional.test_images_on_simulator import upload

    return upload(sim, site, "fixed-src", b"abc" * 1000)


def test_a_controlled_image_first_uploaded_rolls_out_in_its_waves_to_every_site(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    made = client.post("/v1/images", json={"name": "app", "source": {"site": a, "upload": True},
                                           "disk_format": "raw", "container_format": "bare", "mode": "controlled",
                                           "rollout": {"waves": [{"sites": [b]}, {"rest": True}], "manual": True}})
    assert made.status_code == 202, made.text
    data = os.urandom(100_000)
    assert client.put("/v1/images/app/file", content=data).status_code == 202
    run(runtime, engine)
    shown = client.get("/v1/images/app").json()
    state = shown["options"]["rollout"]
    assert (state["state"], state["wave"], state["generation"]) == ("paused", 0, shown["generation"]), state
    assert state["wave_names"] == [[b], [a, c]] and "manual" in state["reason"]
    assert len(images_named(sim, b, "app")) == 1 and images_named(sim, c, "app") == []
    assert client.post("/v1/images/app/rollout/resume").status_code == 202
    run(runtime, engine)
    assert client.get("/v1/images/app").json()["options"]["rollout"]["state"] == "done"
    md5 = hashlib.md5(data).hexdigest()
    for site in (a, b, c):
        assert md5 in [i["checksum"] for i in images_named(sim, site, "app")], site
    assert {x["status"] for x in bindings(client, "app").values()} == {"in-sync"}


def test_a_plan_patched_in_without_a_new_version_is_the_next_versions_plan(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, c = sim.site_names()
    client.post("/v1/images", json={"name": "app", "source": {"site": a, "upload": True}, "disk_format": "raw",
                                    "container_format": "bare"})
    assert client.put("/v1/images/app/file", content=os.urandom(50_000)).status_code == 202
    run(runtime, engine)
    plan = {"waves": [{"sites": [c]}, {"rest": True}], "manual": True}
    patched = client.patch("/v1/images/app", json={"mode": "controlled", "rollout": plan})
    assert patched.status_code == 202, patched.text
    bad = client.patch("/v1/images/app", json={"rollout": {"waves": [{"count": 0}]}})
    assert bad.status_code == 400 and "count" in bad.json()["detail"], bad.text
    assert client.put("/v1/images/app/file", content=os.urandom(60_000)).status_code == 202
    run(runtime, engine)
    state = client.get("/v1/images/app").json()["options"]["rollout"]
    assert (state["state"], state["wave_names"], state["manual"]) == ("paused", [[c], [a, b]], True), state
    assert len(images_named(sim, c, "app")) == 2 and len(images_named(sim, b, "app")) == 1


def test_an_empty_upload_is_refused_and_the_current_version_stays(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, b, _c = sim.site_names()
    client.post("/v1/images", json={"name": "up", "source": {"site": a, "upload": True}, "disk_format": "raw",
                                    "container_format": "bare"})
    data = os.urandom(30_000)
    assert client.put("/v1/images/up/file", content=data).status_code == 202
    run(runtime, engine)
    generation = client.get("/v1/images/up").json()["generation"]
    empty = client.put("/v1/images/up/file", content=b"", headers={"Content-Type": "application/octet-stream"})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"], empty.text
    run(runtime, engine)
    assert client.get("/v1/images/up").json()["generation"] == generation
    for site in (a, b):
        assert [i["checksum"] for i in images_named(sim, site, "up")] == [hashlib.md5(data).hexdigest()], site
