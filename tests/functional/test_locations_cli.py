"""``skyfleet locations`` against a live server: the table and the JSON of where one can boot."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from skyfleet.api.runtime import Runtime
from skyfleet.cli.main import app, hoist_global_options
from skyfleet.db.engine import transaction
from tests.placement_support import add_site, declare_image, zone

runner = CliRunner()


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, hoist_global_options(["--url", url, *args]),
                           env={"SKYFLEET_TOKEN": "", "OS_CLOUD": "", "OS_AUTH_URL": ""})
    return result.exit_code, result.output


def test_locations_as_a_table_and_as_json(live_server: Callable[[Runtime], str],
                                          runtime_factory: Callable[..., Runtime]) -> None:
    runtime = runtime_factory(None, None)
    with transaction(runtime.factory) as s:
        add_site(s, "paris", labels={"tier": "core"}, zones=[zone("az1"), zone("az2")])
        add_site(s, "rome", labels={"tier": "edge"}, hypervisors=[])
        declare_image(s, "golden", project_id="admin", mode="lazy", placement={"sites": ["rome"]})
    url = live_server(runtime)
    code, out = cli(url, "locations")
    assert code == 0, out
    assert "paris" in out and "az1,az2" in out and "16/32768/400" in out and "unknown" in out
    assert "golden*" in out  # copied on first use
    code, out = cli(url, "locations", "--selector", "tier=edge", "-f", "json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["rome"]
    assert {i["name"]: i["image"] for i in rows[0]["images"]} == {"cirros": "present", "golden": "copy"}
    code, out = cli(url, "locations", "--selector", "tier=a b")
    assert code == 1 and "400" in out
