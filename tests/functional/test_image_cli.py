"""``skyfleet image`` against a live server whose workers copy between simulated sites, checked with
openstacksdk as a user would: create --wait lands verified copies on every other site, a lazy image
is copied by ``use --wait`` only where it is used, ``set --wait`` with a new source replaces the
copies with the new version, an image comes from an allowed URL, a controlled image's wait lasts
through its waves, delete --wait removes Skyfleet's copies, a failed site, a paused rollout or a
timeout ends --wait with a non-zero code and the reason, and bad options are usage errors."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

import openstack
import pytest
from typer.testing import CliRunner, Result

from skyfleet.api.runtime import Runtime
from skyfleet.cli.image_wait import human
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites
from tests.functional.test_images_from_url import BODY, Handler

runner = CliRunner()
DATA = os.urandom(3 * 1024 * 1024 + 4321)
RATE = 1_000_000  # bytes per second into each site: a copy takes ~3 s, so --wait sees it under way


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, hoist_global_options(["--url", url, *args]),
                         env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})


def connect(sim: Simulator, site: str) -> Any:
    return openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud(site))


def upload(sim: Simulator, site: str, name: str, data: bytes = DATA) -> dict[str, Any]:
    conn = connect(sim, site)
    made = conn.image.post("/images", json={"name": name, "disk_format": "raw", "container_format": "bare"}).json()
    assert conn.image.put(f"/images/{made['id']}/file", data=data,
                          headers={"Content-Type": "application/octet-stream"}).status_code == 204
    image: dict[str, Any] = conn.image.get(f"/images/{made['id']}").json()
    return image


def images_named(sim: Simulator, site: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = connect(sim, site).image.get("/images", params={"name": name}).json()["images"]
    return found


@pytest.fixture
def fleet(sim: Simulator, live_server: Callable[..., str],
          runtime_factory: Callable[..., Runtime]) -> tuple[str, list[str]]:
    """A server with workers over three simulated sites (copies capped at ``RATE`` into each site)."""
    runtime = runtime_factory(engine_poll_interval=0.2, image_target_bps=RATE)
    names = sim.site_names()[:3]
    register_sites(runtime.factory, runtime.box, sim, names)
    return live_server(runtime, workers=True), names


def test_create_wait_copies_verified_then_delete_wait_removes_them(sim: Simulator,
                                                                   fleet: tuple[str, list[str]]) -> None:
    url, (a, b, c) = fleet
    source = upload(sim, a, "cli-cirros")
    done = cli(url, "image", "create", "cli-cirros", "--from-site", a, "--from-image", source["id"],
               "--property", "hw_disk_bus=scsi", "--tag", "base", "--wait", "--format", "json")
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert {x["site_name"]: x["status"] for x in body["bindings"]} == {a: "in-sync", b: "in-sync", c: "in-sync"}
    lines = done.stderr.splitlines()
    whole = human(3 * len(DATA))  # the source's copy (adopted) counts as done
    assert any("copying" in line and f" MB of {whole} (" in line for line in lines), lines  # bytes under way
    assert lines[-1] == f"cli-cirros: {whole} of {whole} (100%); 3 in-sync", lines
    for site in (b, c):
        [copy] = images_named(sim, site, "cli-cirros")
        assert (copy["status"], copy["checksum"], copy["os_hash_value"], copy["size"]) == (
            "active", source["checksum"], source["os_hash_value"], len(DATA))
        assert copy["hw_disk_bus"] == "scsi" and copy["tags"] == ["base"]
    listed = cli(url, "image", "list")
    assert listed.exit_code == 0 and "cli-cirros" in listed.stdout and "in-sync=3" in listed.stdout
    assert "site-" in listed.stdout  # the source column (folded at 80 columns)
    [row] = json.loads(cli(url, "image", "list", "--format", "json").stdout)
    assert row["spec"]["source"]["image_id"] == source["id"] and row["options"]["mode"] == "auto"

    gone = cli(url, "image", "delete", "cli-cirros", "--wait")
    assert gone.exit_code == 0, gone.output
    assert "cli-cirros: gone" in gone.stderr and "deleted" in gone.stdout
    assert images_named(sim, b, "cli-cirros") == [] and images_named(sim, c, "cli-cirros") == []
    assert [i["id"] for i in images_named(sim, a, "cli-cirros")] == [source["id"]]  # the source, adopted
    missing = cli(url, "image", "show", "cli-cirros")
    assert missing.exit_code == 1 and "404" in missing.output


def test_lazy_image_is_copied_where_it_is_used_and_set_makes_a_new_version(
        sim: Simulator, fleet: tuple[str, list[str]]) -> None:
    url, (a, b, c) = fleet
    source = upload(sim, a, "cli-lazy", DATA[:500_000])
    made = cli(url, "image", "create", "cli-lazy", "--from-site", a, "--from-image", source["id"],
               "--mode", "lazy", "--wait", "--format", "json")
    assert made.exit_code == 0 and json.loads(made.stdout)["bindings"] == [], made.output
    used = cli(url, "image", "use", "cli-lazy", c, "--wait")
    assert used.exit_code == 0, used.output
    assert "cli-lazy: 1 in-sync of 1 site(s)" in used.stderr or "(100%); 1 in-sync" in used.stderr, used.stderr
    assert c in used.stdout and "in-sync" in used.stdout
    [copy] = images_named(sim, c, "cli-lazy")
    assert copy["checksum"] == source["checksum"] and copy["size"] == 500_000
    assert images_named(sim, b, "cli-lazy") == []
    shown = cli(url, "image", "show", "cli-lazy", "--format", "json")
    assert [x["site_name"] for x in json.loads(shown.stdout)["bindings"]] == [c]
    v2 = upload(sim, a, "cli-lazy-v2", DATA[:300_000])
    changed = cli(url, "image", "set", "cli-lazy", "--from-site", a, "--from-image", v2["id"], "--wait")
    assert changed.exit_code == 0, changed.output
    [new] = images_named(sim, c, "cli-lazy")  # the new version replaced the old copy
    assert new["id"] != copy["id"] and new["checksum"] == v2["checksum"] and new["skyfleet_generation"] == "2"
    refused = cli(url, "image", "create", "cli-web", "--from-url", "https://example.net/x.img")
    assert refused.exit_code == 1 and "URL sources are off" in flat(refused.output), refused.output


def test_a_failed_site_and_a_timeout_end_the_wait_with_the_reason(sim: Simulator,
                                                                  fleet: tuple[str, list[str]]) -> None:
    url, (a, b, c) = fleet
    source = upload(sim, a, "cli-clash")
    foreign = upload(sim, c, "cli-clash", b"something else")  # not Skyfleet's: the copy is refused there
    failed = cli(url, "image", "create", "cli-clash", "--from-site", a, "--from-image", source["id"],
                 "--site", b, "--site", c, "--wait")
    assert failed.exit_code == 1, failed.output
    assert f"{c}: " in failed.stderr and "already exists" in failed.stderr, failed.stderr
    assert "1 site(s) failed" in failed.stderr
    assert [i["id"] for i in images_named(sim, c, "cli-clash")] == [foreign["id"]]
    [copy] = images_named(sim, b, "cli-clash")
    assert copy["checksum"] == source["checksum"]

    slow = cli(url, "image", "create", "cli-slow", "--from-site", a, "--from-image", source["id"],
               "--site", b, "--wait", "--timeout", "1")
    assert slow.exit_code == 3, slow.output
    assert "not settled after 1 s" in slow.stderr


def test_an_image_from_a_url_on_the_allow_list(sim: Simulator, live_server: Callable[..., str],
                                               runtime_factory: Callable[..., Runtime]) -> None:
    web = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # serves BODY at /disk.img
    threading.Thread(target=web.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        runtime = runtime_factory(engine_poll_interval=0.2, image_url_allow=f"{base}/")
        b = sim.site_names()[1]
        register_sites(runtime.factory, runtime.box, sim, [b])
        url = live_server(runtime, workers=True)
        md5 = hashlib.md5(BODY).hexdigest()
        made = cli(url, "image", "create", "cli-web", "--from-url", f"{base}/disk.img", "--checksum", md5,
                   "--disk-format", "raw", "--container-format", "bare", "--wait")
        assert made.exit_code == 0, made.output
        [copy] = images_named(sim, b, "cli-web")
        assert (copy["checksum"], copy["size"], copy["disk_format"]) == (md5, len(BODY), "raw")
    finally:
        web.shutdown()


def test_controlled_wait_lasts_through_every_wave_stops_when_paused_and_rolls_back(
        sim: Simulator, fleet: tuple[str, list[str]]) -> None:
    url, (a, b, c) = fleet
    source = upload(sim, a, "cli-waves", DATA[:300_000])
    done = cli(url, "image", "create", "cli-waves", "--from-site", a, "--from-image", source["id"],
               "--mode", "controlled", "--wait", "--format", "json")  # waves: a (the canary), b, then c
    assert done.exit_code == 0, done.output
    last = done.stderr.splitlines()[-1]
    assert "3 in-sync" in last and last.endswith("; rollout done, wave 3 of 3"), done.stderr
    assert json.loads(done.stdout)["options"]["rollout"]["state"] == "done"
    for site in (b, c):
        assert [i["checksum"] for i in images_named(sim, site, "cli-waves")] == [source["checksum"]]

    halt = upload(sim, a, "cli-halt", DATA[:200_000])
    upload(sim, c, "cli-halt", b"not the same")  # the last wave's site refuses the copy
    paused = cli(url, "image", "create", "cli-halt", "--from-site", a, "--from-image", halt["id"],
                 "--mode", "controlled", "--wait")
    assert paused.exit_code == 1, paused.output
    errors = flat(paused.stderr)
    assert f"{c}: image 'cli-halt' already exists" in errors, errors
    assert "rollout: wave 3: 1 site(s) failed" in errors and "the rollout stopped" in errors
    assert [i["checksum"] for i in images_named(sim, b, "cli-halt")] == [halt["checksum"]]
    aborted = cli(url, "image", "rollout", "cli-halt", "abort", "--format", "json")
    assert aborted.exit_code == 0 and json.loads(aborted.stdout)["options"]["rollout"]["state"] == "aborted"
    again = cli(url, "image", "rollout", "cli-halt", "resume")
    assert again.exit_code == 1 and "409" in again.output

    v2 = upload(sim, a, "cli-waves-v2", DATA[:100_000])
    newer = cli(url, "image", "set", "cli-waves", "--from-site", a, "--from-image", v2["id"], "--force",
                "--wait")  # force: the source site's own image of the name (v1, adopted) is not Skyfleet's
    assert newer.exit_code == 0, newer.output
    assert [i["checksum"] for i in images_named(sim, c, "cli-waves")] == [v2["checksum"]]
    back = cli(url, "image", "rollback", "cli-waves", "--wait")
    assert back.exit_code == 0, back.output
    for site in (b, c):  # every site on the previous version again
        assert [i["checksum"] for i in images_named(sim, site, "cli-waves")] == [source["checksum"]]
    none_left = cli(url, "image", "rollback", "cli-waves")
    assert none_left.exit_code == 1 and "no previous version" in flat(none_left.output)


def flat(text: str) -> str:
    """Output with rich's error panel taken away: one line of words."""
    return " ".join(text.translate(str.maketrans("", "", "│╭╮╰╯─")).split())


def test_bad_options_are_usage_errors_never_a_traceback() -> None:
    nowhere = "http://127.0.0.1:9"  # never asked: each case is refused before any request
    cases = [
        (["--from-site", "s", "--from-image", "x", "--from-url", "https://example.net/x.img"], "not both"),
        (["--from-site", "s"], "--from-site and --from-image go together"),
        ([], "give --from-site and --from-image, or --from-url"),
        (["--from-site", "s", "--from-image", "x", "--property", "novalue"], "'novalue' is not KEY=VALUE"),
        (["--from-site", "s", "--from-image", "x", "--property", "=v"], "'=v' is not KEY=VALUE"),
        (["--from-site", "s", "--from-image", "x", "--mode", "sometimes"], "'sometimes' is not one of"),
        (["--from-site", "s", "--from-image", "x", "--visibility", "open"], "'open' is not one of"),
        (["--from-site", "s", "--from-image", "x", "--site", "s", "--group", "g"], "give one of"),
    ]
    for extra, reason in cases:
        result = cli(nowhere, "image", "create", "bad", *extra)
        assert result.exit_code == 2 and reason in flat(result.output), (extra, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
    nothing = cli(nowhere, "image", "set", "bad")
    assert nothing.exit_code == 2 and "nothing to change" in flat(nothing.output)
