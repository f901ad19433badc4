"""``skyfleet quota`` and ``skyfleet project`` against a live server."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def test_quota_cli_round_trip(sim: Simulator, live_server: Callable[[Runtime], str],
                              runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    register_sites(runtime.factory, runtime.box, sim, ["site-0001", "site-0002"])
    url = live_server(runtime)
    code, out = cli(url, "quota", "set", "p1", "-l", "cores=40", "-l", "ram=-1", "--mode", "soft",
                    "--project-name", "demo", "--format", "json")
    assert code == 0, out
    body = json.loads(out)
    assert (body["limits"]["cores"], body["limits"]["ram"], body["mode"]) == (40, -1, "soft")
    code, out = cli(url, "quota", "set", "p1", "-l", "cores=lots")
    assert code != 0 and "resource=integer" in out
    code, out = cli(url, "quota", "set", "p1", "-l", "cpus=4")
    assert code == 1 and "unknown resource" in out
    assert json.loads(cli(url, "quota", "defaults", "-l", "volumes=3", "--format", "json")[1])["volumes"] == 3
    assert cli(url, "quota", "class", "set", "gold", "-l", "cores=99")[0] == 0
    classes = json.loads(cli(url, "quota", "class", "list", "--format", "json")[1])
    assert {c["name"] for c in classes} == {"default", "gold"}
    code, out = cli(url, "quota", "usage", "p1")
    assert code == 0 and "cores=40" in out
    assert json.loads(cli(url, "quota", "sync", "p1", "--format", "json")[1])["collect_operation"]
    assert cli(url, "project", "map", "p1", "site-0001", "remote-1")[0] == 0
    rows = json.loads(cli(url, "project", "mappings", "p1", "--format", "json")[1])
    assert {r["site_name"]: r["source"] for r in rows} == {"site-0001": "explicit", "site-0002": "by-name"}
    assert cli(url, "project", "unmap", "p1", "site-0001")[0] == 0
    code, out = cli(url, "quota", "set", "p1", "--mode", "kingbird", "--format", "json")
    assert code == 0 and json.loads(out)["mode"] == "kingbird", out
    assert cli(url, "quota", "set", "p1", "--mode", "loose")[0] != 0
    assert cli(url, "quota", "delete", "p1")[0] == 0
    assert json.loads(cli(url, "quota", "show", "p1", "--format", "json")[1])["limits"]["cores"] == 20
