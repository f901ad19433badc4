"""``skyfleet site import`` meets the site URL policy: a clouds.yaml entry aimed at the metadata
address is reported as failed with the rule, the others are registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from tests.support import FakeProber

runner = CliRunner()


def _cloud(auth_url: str) -> dict[str, object]:
    return {"auth": {"auth_url": auth_url, "username": "admin", "password": "import-pass-3141",
                     "project_name": "admin", "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": "RegionOne"}


def test_import_refuses_a_metadata_auth_url_and_names_the_rule(
        tmp_path: Path, live_server: Callable[[Runtime], str], runtime_factory: Callable[..., Runtime]) -> None:
    url = live_server(runtime_factory(None, FakeProber()))
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"good": _cloud("http://192.0.2.5:5000/v3"),
                                                 "meta": _cloud("http://169.254.169.254/v3")}}))
    result = runner.invoke(app, hoist_global_options(["--url", url, "site", "import", str(clouds), "-f", "json"]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    assert result.exit_code == 1, result.output
    rows = {r["cloud"]: r for r in json.loads(result.output)}
    assert rows["good"]["result"] == "registered"
    assert rows["meta"]["result"] == "failed"
    assert "400" in rows["meta"]["detail"] and "169.254.0.0/16" in rows["meta"]["detail"]
