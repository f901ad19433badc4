"""The server CLI against a live server with its workers: a dry run shows the candidates, ``create
--wait`` follows two servers to ACTIVE, ``list`` shows them, ``delete --wait`` removes one from its
site; a refused explicit boot makes ``--wait`` exit non-zero with the site's reason."""

from __future__ import annotations

import json
from collections.abc import Callable

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.engine_support import observe_inventory, register_sites
from tests.functional.test_images_on_simulator import connect, upload
from tests.functional.test_sync_cli import cli


def test_server_commands(sim: Simulator, live_server: Callable[..., str],
                         runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    site = sim.site_names()[0]
    register_sites(runtime.factory, runtime.box, sim, [site])
    upload(sim, site, "cli-base", b"x" * 4096)
    observe_inventory(runtime)
    url = live_server(runtime, workers=True)
    code, out = cli(url, "server", "create", "cli-vm", "--flavor", "m1.tiny", "--image", "cli-base", "--site", site,
                    "--dry-run", "--format", "json")
    assert code == 0 and [c["site_name"] for c in json.loads(out)["candidates"]] == [site], out
    code, out = cli(url, "server", "create", "cli-vm", "--flavor", "m1.tiny", "--image", "cli-base", "--site", site,
                    "--count", "2", "--wait", "--timeout", "120")
    assert code == 0, out
    assert "cli-vm-1: active" in out and "cli-vm-2: active" in out
    code, out = cli(url, "server", "list", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and sorted(r["name"] for r in rows) == ["cli-vm-1", "cli-vm-2"]
    remote = {s.name for s in connect(sim, site).compute.servers(all_projects=True)}
    assert {"cli-vm-1", "cli-vm-2"} <= remote
    code, out = cli(url, "server", "delete", rows[0]["id"], "--wait", "--format", "json")
    assert code == 0 and json.loads(out)["status"] == "deleted", out
    assert rows[0]["name"] not in {s.name for s in connect(sim, site).compute.servers(all_projects=True)}
    sim.set_faults(site, quota_exceeded=True)
    try:
        code, out = cli(url, "server", "create", "cli-full", "--flavor", "m1.tiny", "--image", "cli-base",
                        "--site", site, "--wait", "--timeout", "120")
    finally:
        sim.clear_faults(site)
    assert code != 0 and "quota exceeded" in out.lower(), out
    code, out = cli(url, "server", "create", "x", "--flavor", "m1.tiny", "--image", "i", "--meta", "novalue")
    assert code != 0 and "key=value" in out
