"""The sync CLI against a live server: declare a keypair and a flavor, watch the bindings converge,
change the placement, delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, register_sites

runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def test_keypair_and_flavor_commands(tmp_path: Path, sim: Simulator, live_server: Callable[[Runtime], str],
                                     runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    names = sim.site_names()[:2]
    register_sites(runtime.factory, runtime.box, sim, names)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    url = live_server(runtime)
    key = tmp_path / "id.pub"
    key.write_text(PUBLIC_KEY + "\n")
    code, out = cli(url, "keypair", "create", "cli-key", "--public-key", str(key), "--site", names[0],
                    "--format", "json")
    assert code == 0, out
    assert [b["site_name"] for b in json.loads(out)["bindings"]] == [names[0]]
    engine.run_until_idle()
    code, out = cli(url, "keypair", "show", "cli-key", "--format", "json")
    assert code == 0 and json.loads(out)["bindings"][0]["status"] == "in-sync"
    code, out = cli(url, "keypair", "set", "cli-key", "--site", names[0], "--site", names[1], "--format", "json")
    assert code == 0, out
    engine.run_until_idle()
    code, out = cli(url, "keypair", "list")
    assert code == 0 and "cli-key" in out and "in-sync=2" in out
    code, out = cli(url, "flavor", "create", "cli.small", "--vcpus", "1", "--ram", "512", "--disk", "1",
                    "--format", "json")
    assert code == 0 and json.loads(out)["spec"]["vcpus"] == 1
    code, out = cli(url, "flavor", "create", "cli.bad", "--ram", "512")
    assert code != 0 and "vcpus" in out
    code, out = cli(url, "keypair", "delete", "cli-key", "--format", "json")
    assert code == 0 and json.loads(out)["state"] == "deleting"
    engine.run_until_idle()
    code, out = cli(url, "keypair", "list", "--format", "json")
    assert code == 0 and json.loads(out) == []
