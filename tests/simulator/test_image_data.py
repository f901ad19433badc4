"""Images whose data the simulator does not hold: generated images (bytes made when read, hashes known
from creation), the digest-only store of uploads, and the upload-rate fault."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from skyfleet.simulator import Simulator
from skyfleet.simulator.cli import parse_args
from skyfleet.simulator.imagedata import BLOCK, DigestSink, block, generate
from tests.simulator.conftest import connect

SIZE = 2 * BLOCK + 12345  # more than one block, and not a multiple of it


@pytest.fixture(scope="module")
def digest_sim() -> Iterator[Simulator]:
    with Simulator(2, digest_only_images=True) as running:
        yield running


def download(conn: Any, image_id: str) -> bytes:
    response = conn.image.get(f"/images/{image_id}/file", stream=True)
    assert response.status_code == 200, response.text
    return b"".join(response.iter_content(65536))


def test_a_generated_image_downloads_bytes_that_match_its_record(sim: Simulator) -> None:
    made = requests.post(f"{sim.base_url}/_sim/sites/site-0002/images",
                         json={"size": SIZE, "seed": 7, "name": "big", "properties": {"os_distro": "sim"}}, timeout=30)
    assert made.status_code == 201, made.text
    image = made.json()
    conn = connect(sim, "site-0002")
    shown = conn.image.get(f"/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["virtual_size"], shown["name"]) == ("active", SIZE, SIZE, "big")
    assert shown["owner"] == sim.state("site-0002").keystone.admin_project and shown["os_distro"] == "sim"
    data = download(conn, image["id"])
    assert len(data) == SIZE
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    assert data[BLOCK : 2 * BLOCK] == block(7, 1) != block(7, 0)  # blocks differ: a repeated one is caught
    assert generate(SIZE, 7).checksum == shown["checksum"] != generate(SIZE, 8).checksum  # deterministic


def test_generated_images_from_python_hold_no_bytes_and_bad_requests_are_refused(sim: Simulator) -> None:
    image = sim.add_generated_image("site-0003", 3 * BLOCK, name="pub", visibility="public", owner="p1")
    stored = sim.state("site-0003").glance.data[image["id"]]
    assert not isinstance(stored, bytes) and (image["owner"], image["visibility"]) == ("p1", "public")
    assert len(download(connect(sim, "site-0003"), image["id"])) == 3 * BLOCK
    assert sim.add_generated_image("site-0003", 0)["checksum"] == hashlib.md5(b"").hexdigest()
    with pytest.raises(ValueError, match="size"):
        sim.add_generated_image("site-0003", -1)
    for body in ({}, {"size": "1"}, {"size": 10, "colour": "red"}, {"size": 10, "visibility": "everyone"}, [1]):
        answer = requests.post(f"{sim.base_url}/_sim/sites/site-0003/images", json=body, timeout=5)
        assert answer.status_code == 400, (body, answer.text)
    assert requests.post(f"{sim.base_url}/_sim/sites/nowhere/images", json={"size": 1}, timeout=5).status_code == 404


def test_a_digest_only_store_keeps_size_and_hashes_and_refuses_the_download(digest_sim: Simulator) -> None:
    conn = connect(digest_sim, "site-0001")
    payload = b"QFI\xfb" + bytes(20) + (5 * 1024**3).to_bytes(8, "big") + bytes(range(256)) * 4000
    image = conn.image.create_image(name="copy", data=io.BytesIO(payload), disk_format="qcow2",
                                    container_format="bare", allow_duplicates=True)
    shown = conn.image.get(f"/images/{image.id}").json()
    assert (shown["status"], shown["size"], shown["virtual_size"]) == ("active", len(payload), 5 * 1024**3)
    assert shown["checksum"] == hashlib.md5(payload).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    stored = digest_sim.state("site-0001").glance.data[image.id]
    assert not isinstance(stored, bytes) and stored.size == len(payload) and len(stored.head) == 512
    refused = conn.image.get(f"/images/{image.id}/file")
    assert refused.status_code == 410 and "digest-only" in refused.text
    generated = digest_sim.add_generated_image("site-0001", 1000)  # generated images still download
    assert len(download(conn, generated["id"])) == 1000


def test_upload_and_download_rates_are_capped_per_transfer(sim: Simulator) -> None:
    conn = connect(sim, "site-0001")
    made = conn.image.post("/images", json={"name": "slow-up", "disk_format": "raw", "container_format": "bare"})
    sim.set_faults("site-0001", slow_image_upload_bps=400_000, slow_image_bps=400_000)
    try:
        started = time.monotonic()
        answer = conn.image.put(f"/images/{made.json()['id']}/file", data=b"u" * 200_000,
                                headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 204 and time.monotonic() - started >= 0.45
        generated = sim.add_generated_image("site-0001", 200_000)
        started = time.monotonic()
        assert len(download(conn, generated["id"])) == 200_000 and time.monotonic() - started >= 0.45
    finally:
        sim.clear_faults("site-0001")
    assert conn.image.get(f"/images/{made.json()['id']}").json()["size"] == 200_000


def sink_digest(parts: list[bytes]) -> tuple[int, str, str]:
    sink = DigestSink()
    for part in parts:
        sink.write(part)
    digest = sink.digest()
    return digest.size, digest.checksum, digest.os_hash_value


def exact(data: bytes) -> tuple[int, str, str]:
    return len(data), hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def split(data: bytes, step: int) -> list[bytes]:
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def test_the_digest_sink_is_exact_whether_or_not_it_recognises_a_generated_pattern() -> None:
    made = generate(SIZE, 11)
    pattern = b"".join(made.blocks())
    assert sink_digest(split(pattern, 65536)) == (SIZE, made.checksum, made.os_hash_value)
    assert sink_digest([*split(pattern, 3)[:5], pattern[15:]]) == exact(pattern)  # too short to recognise
    start = BLOCK - 2
    around = [pattern[:start], pattern[start : start + 5], pattern[start + 5 : start + 7], pattern[start + 7 :]]
    sink = DigestSink()
    for part in around:  # chunks across a block's start and inside its index bytes
        sink.write(part)
    assert sink._seed == 11 and sink._md5 is None  # followed by comparison, never hashed
    assert (sink.digest().checksum, sink.size) == (made.checksum, SIZE)
    prefix = pattern[: BLOCK + 777]  # a pattern cut short: a size never generated
    assert sink_digest(split(prefix, 4096)) == exact(prefix)
    for at in (0, 5, 9, BLOCK + 3, SIZE - 1):  # one byte differs: hashed from there on, exactly
        changed = pattern[:at] + bytes([pattern[at] ^ 1]) + pattern[at + 1 :]
        assert sink_digest(split(changed, 65536)) == exact(changed)
    longer = pattern + b"tail"
    assert sink_digest(split(longer, 65536)) == exact(longer)
    assert sink_digest(split(pattern, 65536)[1:]) == exact(pattern[65536:])  # not from the start: hashed
    assert sink_digest([b""]) == exact(b"") and sink_digest([b"tiny"]) == exact(b"tiny")


def test_a_digest_only_site_takes_a_generated_image_copied_from_another_site(digest_sim: Simulator) -> None:
    source = digest_sim.add_generated_image("site-0001", SIZE, seed=3)
    conn, target = connect(digest_sim, "site-0001"), connect(digest_sim, "site-0002")
    made = target.image.post("/images", json={"name": "copy", "disk_format": "raw", "container_format": "bare"})
    data = download(conn, source["id"])
    assert target.image.put(f"/images/{made.json()['id']}/file", data=data,
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
    shown = target.image.get(f"/images/{made.json()['id']}").json()
    assert (shown["size"], shown["checksum"], shown["os_hash_value"]) == (SIZE, source["checksum"],
                                                                          source["os_hash_value"])


def test_digest_only_images_is_off_unless_asked() -> None:
    assert parse_args([]).digest_only_images is False and Simulator(1).fleet.sites["site-0001"].digest_only_images \
        is False
    assert parse_args(["--digest-only-images"]).digest_only_images is True
