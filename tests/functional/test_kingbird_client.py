"""python-kingbirdclient 0.2.1 (the ``kingbird`` CLI) against Skyfleet's Kingbird v1.0 quota API.

Skyfleet validates Keystone tokens at a simulated home Keystone; the client authenticates there and
talks to ``--os-kingbird-url``, exactly as it did with Kingbird.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator

kingbird_shell = pytest.importorskip("kingbirdclient.shell", reason="python-kingbirdclient (dev extra) missing")


@pytest.fixture
def kingbird(sim: Simulator, runtime_factory: Callable[..., Runtime], live_server: Callable[[Runtime], str],
             capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    home = sim.cloud(sim.site_names()[0])["auth"]
    runtime = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                              home_username=home["username"], home_password=home["password"],
                              home_project_name=home["project_name"])
    url = live_server(runtime) + "/v1.0"

    def run(*args: str, user: str = "admin") -> Any:
        auth = sim.cloud(sim.site_names()[0], user=user)["auth"]
        capsys.readouterr()
        argv = ["--os-kingbird-url", url, "--os-auth-url", auth["auth_url"], "--os-username", auth["username"],
                "--os-password", auth["password"], "--os-tenant-name", auth["project_name"],
                "--os-user-domain-name", "Default", "--os-project-domain-name", "Default", *args]
        code = kingbird_shell.KingbirdShell().run(argv)
        out = capsys.readouterr().out
        if code != 0:
            return code
        return json.loads(out) if "-f" in args and out.strip() else out

    return run


def rows(listing: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["Quota"]: r["Limit"] for r in listing}


def test_quota_and_quota_class_commands(kingbird: Callable[..., Any], sim: Simulator) -> None:
    assert rows(kingbird("quota", "defaults", "-f", "json"))["cores"] == 20
    kingbird("quota", "update", "proj-x", "--cores", "40", "--instances", "4", "-f", "json")
    shown = rows(kingbird("quota", "show", "--tenant", "proj-x", "-f", "json"))
    assert (shown["cores"], shown["instances"], shown["ram"]) == (40, 4, 51200)
    detail = kingbird("quota", "detail", "--tenant", "proj-x", "-f", "json")
    assert {r["Quota"]: (r["Usage"], r["Limit"]) for r in detail}["cores"] == (0, 40)
    assert "sync quota for tenant proj-x has been triggered" in kingbird("quota", "sync", "proj-x")
    kingbird("quota-class", "update", "gold", "--cores", "64", "-f", "json")
    assert rows(kingbird("quota-class", "show", "gold", "-f", "json"))["cores"] == 64
    kingbird("quota-class", "delete", "gold")
    assert kingbird("quota-class", "show", "gold", "-f", "json") == 1  # 404: the class is gone
    kingbird("quota", "delete", "proj-x")
    assert rows(kingbird("quota", "show", "--tenant", "proj-x", "-f", "json"))["cores"] == 20


def test_tenant_reads_its_own_and_cannot_update(kingbird: Callable[..., Any], sim: Simulator) -> None:
    assert kingbird("quota", "update", "proj-y", "--cores", "1", "-f", "json", user="demo") == 1
    assert kingbird("quota", "show", "--tenant", "proj-y", "-f", "json", user="demo") == 1  # not its project
    assert rows(kingbird("quota", "show", "-f", "json", user="demo"))["cores"] == 20  # its own
