"""The CLI against a live server: import from clouds.yaml, list, show, update, delete, events, keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.db.engine import transaction
from skyfleet.domains.sites.models import Site
from skyfleet.secrets import SecretBox, load_keys
from skyfleet.simulator import Simulator
from tests.conftest import make_settings

runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def test_import_clouds_yaml_then_manage_sites(tmp_path: Path, sim: Simulator, live_server: Callable[[Runtime], str],
                                              runtime_factory: Callable[..., Runtime]) -> None:
    url = live_server(runtime_factory(None, None))
    clouds = tmp_path / "clouds.yaml"
    sim.write_clouds_yaml(clouds)
    names = sim.site_names()[:3]
    args = ["site", "import", str(clouds), "--label", "tier=edge", "--group", "eu"]
    for name in names:
        args += ["--cloud", name]
    code, out = cli(url, *args, "--format", "json")
    assert code == 0, out
    assert sorted(r["cloud"] for r in json.loads(out) if r["result"] == "registered") == names
    code, out = cli(url, "site", "import", str(clouds), "--cloud", names[0], "-f", "json")
    assert json.loads(out)[0]["result"] == "exists"
    code, out = cli(url, "site", "list", "--selector", "tier=edge", "-f", "json")
    listed = json.loads(out)
    assert [s["name"] for s in listed] == names and all(s["availability"] == "online" for s in listed)
    assert all("password" not in s["auth"] for s in listed)
    code, out = cli(url, "site", "update", names[0], "--label", "tier=core")
    assert code == 0, out
    code, out = cli(url, "site", "show", names[0], "-f", "json")
    assert json.loads(out)["labels"] == {"tier": "core"}
    assert cli(url, "site", "unmanage", names[1])[0] == 0
    code, out = cli(url, "site", "delete", names[2])
    assert code == 0
    code, out = cli(url, "site", "show", names[2])
    assert code == 1 and "404" in out
    code, out = cli(url, "events", "--kind", "site.deleted", "-f", "json")
    assert [e["site_name"] for e in json.loads(out)] == [names[2]]
    code, out = cli(url, "site", "list")
    assert names[0] in out and "NAME" in out  # the table view


def test_bad_input_is_reported_not_crashed(tmp_path: Path, live_server: Callable[[Runtime], str],
                                           runtime_factory: Callable[..., Runtime]) -> None:
    url = live_server(runtime_factory(None, None))
    missing = tmp_path / "none.yaml"
    code, out = cli(url, "site", "import", str(missing))
    assert code == 1 and "cannot read" in out
    code, out = cli(url, "site", "add", "x y", "--auth-url", "http://k/v3", "--username", "u",
                    "--password", "p", "--project-name", "p")
    assert code == 1 and "422" in out
    code, out = cli("http://127.0.0.1:9", "site", "list")
    assert code == 1 and "cannot reach" in out


def test_serve_refuses_noauth_on_a_public_address() -> None:
    result = runner.invoke(app, ["serve", "--noauth", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "only loopback" in result.output


def test_config_check_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SKYFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SKYFLEET_HOME_AUTH_URL", "http://k/v3")
    monkeypatch.setenv("SKYFLEET_HOME_PASSWORD", "home-pass-123")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert "configuration is valid" in result.output and "home-pass-123" not in result.output
    monkeypatch.setenv("SKYFLEET_AUDIT_INTERVAL", "-1")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2 and "audit_interval" in result.output


def test_keys_rotate_reencrypts_stored_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   runtime_factory: Callable[..., Runtime], sim: Simulator) -> None:
    from fastapi.testclient import TestClient

    from skyfleet.api.app import create_app
    from tests.functional.conftest import site_auth

    rt = runtime_factory(None, None)
    with TestClient(create_app(rt, start_workers=False)) as client:
        name = sim.site_names()[0]
        assert client.post("/v1/sites", json={"name": name, "auth": site_auth(sim, name)}).status_code == 201
    with transaction(rt.factory) as session:
        before = session.query(Site).one().auth_encrypted
    monkeypatch.setenv("SKYFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SKYFLEET_AUTH_MODE", "noauth")
    result = runner.invoke(app, ["keys", "rotate", "--drop-old"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 site credential(s); dropped 1 old key(s)" in result.output
    settings = make_settings(tmp_path)
    keys = load_keys(settings, create=False)
    assert len(keys) == 1
    with transaction(rt.factory) as session:
        after = session.query(Site).one().auth_encrypted
    assert after != before
    assert SecretBox(keys).decrypt(after)["password"] == site_auth(sim, name)["password"]


def test_global_options_may_follow_the_subcommand() -> None:
    assert hoist_global_options(["site", "show", "x", "-f", "json", "--url=http://h"]) == [
        "-f", "json", "--url=http://h", "site", "show", "x"]


def test_operation_run_show_and_list(tmp_path: Path, sim: Simulator, live_server: Callable[..., str],
                                     runtime_factory: Callable[..., Runtime]) -> None:
    url = live_server(runtime_factory(None, None), workers=True)
    clouds = tmp_path / "clouds.yaml"
    sim.write_clouds_yaml(clouds)
    names = sim.site_names()[:2]
    assert cli(url, "site", "import", str(clouds), "--cloud", names[0], "--cloud", names[1],
               "--label", "tier=edge")[0] == 0
    code, out = cli(url, "operation", "run", "site.probe", "--selector", "tier=edge", "-f", "json")
    assert code == 0, out
    op = json.loads(out[out.index("{"):])
    assert op["state"] == "succeeded" and op["counts"]["succeeded"] == 2
    code, out = cli(url, "operation", "show", op["id"], "-f", "json")
    assert sorted(t["site_name"] for t in json.loads(out)["tasks"]) == names
    code, out = cli(url, "operation", "list", "-f", "json")
    assert json.loads(out)[0]["id"] == op["id"]
    code, out = cli(url, "operation", "run", "no.such.kind")
    assert code == 1 and "unknown task kind" in out
    code, out = cli(url, "operation", "retry", op["id"])
    assert code == 1 and "409" in out
