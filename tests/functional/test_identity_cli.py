"""The identity CLI against a live server: declare a project, a group, a user (password from a file),
a role assignment; rotate the password from a prompt; the user then logs in with it on the sites;
no output ever shows a password."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import openstack
from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

runner = CliRunner()
FIRST, SECOND = "cli-first-Secret-1", "cli-second-Secret-2"


def cli(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]), input=stdin,
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def logs_in(sim: Simulator, site: str, password: str) -> bool:
    cloud = copy.deepcopy(sim.cloud(site))
    cloud["auth"].update(username="dora", password=password, project_name="cli-proj")
    try:
        openstack.connect(**cloud).identity.get_token()
    except Exception:  # a refusal
        return False
    return True


def test_identity_commands(tmp_path: Path, sim: Simulator, live_server: Callable[[Runtime], str],
                           runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory()
    names = sim.site_names()[:2]
    register_sites(runtime.factory, runtime.box, sim, names)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    url = live_server(runtime)
    secret = tmp_path / "pw"
    secret.write_text(FIRST + "\n")
    outputs = []
    for args in (("project", "create", "cli-proj", "--description", "from the CLI"),
                 ("group", "create", "cli-ops"),
                 ("user", "create", "dora", "--email", "dora@example.org", "--member-of", "cli-ops",
                  "--default-project", "cli-proj", "--password-file", str(secret)),
                 ("role-assignment", "create", "--user", "dora", "--project", "cli-proj", "--role", "member"),
                 ("domain", "create", "cli-dom", "--description", "from the CLI"),
                 ("role-assignment", "create", "--user", "dora", "--role", "reader", "--inherited")):
        code, out = cli(url, *args, "--format", "json")
        assert code == 0, out
        outputs.append(out)
    assert json.loads(outputs[2])["options"]["password_set"] is True
    assert json.loads(outputs[3])["name"] == "user:dora:cli-proj:member"
    assert json.loads(outputs[4])["spec"] == {"name": "cli-dom", "description": "from the CLI", "enabled": True}
    assert json.loads(outputs[5])["name"] == "inherited:user:dora:domain:Default:reader"
    engine.run_until_idle()
    assert all(logs_in(sim, site, FIRST) for site in names)
    code, out = cli(url, "user", "show", "dora")
    assert code == 0 and "in-sync" in out
    code, out = cli(url, "user", "set-password", "dora", stdin=f"{SECOND}\n{SECOND}\n")
    assert code == 0, out
    outputs.append(out)
    engine.run_until_idle()
    assert all(logs_in(sim, site, SECOND) for site in names)
    assert not any(logs_in(sim, site, FIRST) for site in names)
    for noun in ("domain", "project", "user", "group", "role-assignment"):
        code, out = cli(url, noun, "list")
        assert code == 0 and "in-sync=2" in out, (noun, out)
        outputs.append(out)
    code, out = cli(url, "user", "show", "dora")
    assert code == 0 and "GROUPS" in out and "cli-ops=added" in out, out
    # a user of one domain on a project of another: the actor's domain named apart
    code, out = cli(url, "role-assignment", "create", "--user", "dora", "--user-domain", "Default", "--project",
                    "cli-proj", "--domain", "cli-dom", "--role", "reader", "--format", "json")
    assert code == 0 and json.loads(out)["name"] == "user:dora:in:Default:cli-proj:reader@cli-dom", out
    assert json.loads(out)["spec"]["user_domain"] == "Default"
    code, out = cli(url, "role-assignment", "create", "--user", "dora", "--project-domain", "cli-dom",
                    "--role", "reader")
    assert code != 0 and "project_domain" in out, out
    # dora declared in cli-dom too: a second declaration, told apart with --domain
    code, out = cli(url, "user", "create", "dora", "--domain", "cli-dom", "--description", "the other dora",
                    "--format", "json")
    assert code == 0 and json.loads(out)["spec"]["domain"] == "cli-dom", out
    code, out = cli(url, "user", "show", "dora")
    assert code != 0 and "?domain=" in out and "Default, cli-dom" in out, out
    code, out = cli(url, "user", "show", "dora", "--domain", "cli-dom", "--format", "json")
    assert code == 0 and json.loads(out)["spec"]["description"] == "the other dora", out
    code, out = cli(url, "user", "list", "--domain", "cli-dom", "--format", "json")
    assert code == 0 and [r["spec"]["domain"] for r in json.loads(out)] == ["cli-dom"], out
    code, out = cli(url, "user", "delete", "dora", "--domain", "cli-dom", "--format", "json")
    assert code == 0 and json.loads(out)["spec"]["domain"] == "cli-dom", out
    code, out = cli(url, "user", "delete", "dora", "--domain", "Default", "--format", "json")
    assert code == 0 and json.loads(out)["state"] == "deleting"
    assert all(FIRST not in o and SECOND not in o for o in outputs)
