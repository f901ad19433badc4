"""python-kingbirdclient 0.2.1 (the ``kingbird`` CLI) against Skyfleet's Kingbird v1.0 quota API.

Skyfleet validates Keystone tokens at a simulated home Keystone; the client authenticates there and
talks to ``--os-kingbird-url``, exactly as it did with Kingbird.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY, register_sites
from tests.functional.test_quota_cli import cli

kingbird_shell = pytest.importorskip("kingbirdclient.shell", reason="python-kingbirdclient (dev extra) missing")


@pytest.fixture(params=[False])
def kingbird(request: pytest.FixtureRequest, sim: Simulator, runtime_factory: Callable[..., Runtime],
             live_server: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """The ``kingbird`` CLI against a live Skyfleet; the param: whether the server runs its workers
    (then with every simulated site registered, no periodic job and a 60 s poll: only the engine)."""
    workers = bool(request.param)
    home = sim.cloud(sim.site_names()[0])["auth"]
    runtime = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                              home_username=home["username"], home_password=home["password"],
                              home_project_name=home["project_name"],
                              **({"periodic_jobs": False, "engine_poll_interval": 60} if workers else {}))
    if workers:
        register_sites(runtime.factory, runtime.box, sim)
    url = live_server(runtime, workers) + "/v1.0"

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
    assert rows(kingbird("quota-class", "show", "gold", "-f", "json"))["cores"] == 20  # gone: the defaults
    kingbird("quota", "delete", "proj-x")
    assert rows(kingbird("quota", "show", "--tenant", "proj-x", "-f", "json"))["cores"] == 20


def test_tenant_reads_its_own_and_cannot_update(kingbird: Callable[..., Any], sim: Simulator) -> None:
    assert kingbird("quota", "update", "proj-y", "--cores", "1", "-f", "json", user="demo") == 1
    assert kingbird("quota", "show", "--tenant", "proj-y", "-f", "json", user="demo") == 1  # not its project
    assert rows(kingbird("quota", "show", "-f", "json", user="demo"))["cores"] == 20  # its own


def _keypair_on(sim: Simulator, site: str, name: str) -> bool:
    import openstack

    cloud = sim.cloud(site)
    conn = openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"), auth_type="password")
    found = conn.compute.find_keypair(name, ignore_missing=True)
    return found is not None and found.public_key == PUBLIC_KEY


@pytest.mark.parametrize("kingbird", [True], indirect=True)
def test_sync_create_copies_by_itself_while_the_user_watches_the_targets(kingbird: Callable[..., Any],
                                                                         sim: Simulator) -> None:
    import time

    import openstack

    source, *targets = sim.site_names()[:3]
    cloud = sim.cloud(source)
    openstack.connect(auth=cloud["auth"], region_name=cloud.get("region_name"),
                      auth_type="password").compute.create_keypair(name="kb-stage-key", public_key=PUBLIC_KEY)
    made = kingbird("sync", "create", "--resource_type", "keypair", "--resources", "kb-stage-key",
                    "--source", source, *[arg for t in targets for arg in ("--target", t)], "-f", "json")
    assert made[0]["STATUS"] == "IN_PROGRESS", made
    started = time.monotonic()
    while not all(_keypair_on(sim, t, "kb-stage-key") for t in targets):  # only the sites are asked
        assert time.monotonic() - started < 20, "the copies did not appear"
        time.sleep(0.2)


# --- a Kingbird quota on a project known only by its id ----------------------------------------------------

KB_SITES = ("site-0001", "site-0002", "site-0003")


@pytest.fixture
def homeless(runtime_factory: Callable[..., Runtime], live_server: Callable[..., str], pg_url: str,
             capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """A Skyfleet without a home Keystone (no same-id rule), running its periodic quota rounds in its
    workers while the client's calls come in, on PostgreSQL (the production store: the read-back of
    concurrent rounds is serialized there), over the given simulated sites; returns (Skyfleet URL, a
    ``kingbird`` runner)."""

    def start(sim: Simulator, sites: tuple[str, ...]) -> tuple[str, Callable[..., str]]:
        runtime = runtime_factory(pg_url, None, quota_interval=0.3, engine_poll_interval=0.1, audit_interval=3600)
        register_sites(runtime.factory, runtime.box, sim, sites)
        url = live_server(runtime, workers=True)
        auth = sim.cloud(sites[0])["auth"]

        def run(*args: str) -> str:
            capsys.readouterr()
            argv = ["--os-kingbird-url", url + "/v1.0", "--os-auth-url", auth["auth_url"], "--os-username",
                    auth["username"], "--os-password", auth["password"], "--os-tenant-name", auth["project_name"],
                    "--os-user-domain-name", "Default", "--os-project-domain-name", "Default", *args]
            code = kingbird_shell.KingbirdShell().run(argv)
            out = capsys.readouterr()
            assert code == 0, out
            return out.out

        return url, run

    return start


def site_cores(sim: Simulator, site: str, name: str) -> int:
    """What the site enforces for the project named ``name`` there (Nova's stock 20 until written)."""
    pid = sim.state(site).keystone.project_by_name(name)
    assert pid is not None
    return int(sim.state(site).nova.quotas.get(pid["id"], {}).get("cores", 20))


def wait_for(predicate: Callable[[], bool], timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.postgres
def test_kingbird_quota_on_regions_sharing_one_keystone(homeless: Callable[..., Any]) -> None:
    """(a) The project exists in the one Keystone of three regions: found by id on every site."""
    with Simulator(sites=3, regions_per_keystone=3) as shared:
        project = shared.state(KB_SITES[0]).keystone.add_project("kb-shared", "known by id only")
        _, kingbird = homeless(shared, KB_SITES)
        kingbird("quota", "update", project, "--cores", "30", "-f", "json")
        kingbird("quota", "sync", project)
        seen: list[list[int]] = []

        def converged() -> bool:
            seen.append([site_cores(shared, s, "kb-shared") for s in KB_SITES])
            return seen[-1] == [10, 10, 10]

        assert wait_for(converged), seen[-5:]
        totals = [sum(v) for v in seen]
        first = next(i for i, t in enumerate(totals) if t <= 30)
        assert all(t <= 30 for t in totals[first:])  # once within the global limit, it stayed there


@pytest.mark.postgres
def test_kingbird_quota_on_sites_sharing_nothing(sim: Simulator, homeless: Callable[..., Any]) -> None:
    """(b) One site knows the id; the two others hold a project of the same name: the name learned
    from the first maps it on the others."""
    name = f"kb-{uuid.uuid4().hex[:8]}"
    project = sim.state(KB_SITES[0]).keystone.add_project(name, "the project's home")
    for site in KB_SITES[1:]:
        sim.state(site).keystone.add_project(name, "same name, another id")
    url, kingbird = homeless(sim, KB_SITES)
    kingbird("quota", "update", project, "--cores", "30", "-f", "json")
    kingbird("quota", "sync", project)
    seen: list[list[int]] = []

    def converged() -> bool:
        seen.append([site_cores(sim, s, name) for s in KB_SITES])
        return seen[-1] == [10, 10, 10]

    assert wait_for(converged), seen[-5:]
    totals = [sum(v) for v in seen]
    first = next(i for i, t in enumerate(totals) if t <= 30)
    assert all(t <= 30 for t in totals[first:])  # once within the global limit, it stayed there
    body = httpx.get(f"{url}/v1/quotas/{project}").json()
    assert body["project_name"] == name and body["unmapped_sites"] == [] and body["warnings"] == []


@pytest.mark.postgres
def test_kingbird_quota_that_maps_to_no_site_says_so(sim: Simulator, homeless: Callable[..., Any]) -> None:
    """(c) No site knows the project: the answers warn, show and usage list every site as unmapped,
    and a quota.unmapped event is recorded; the sites keep their own limits."""
    project = uuid.uuid4().hex
    url, kingbird = homeless(sim, KB_SITES)
    kingbird("quota", "update", project, "--cores", "30", "-f", "json")
    kingbird("quota", "sync", project)
    # what the client received, as any HTTP client sees it: warnings in Warning headers (the bodies
    # are Kingbird's: the limits changed, and the sync's message)
    tenant = uuid.uuid4().hex  # Kingbird's URLs name a project id (noauth: any)
    updated = httpx.put(f"{url}/v1.0/{tenant}/os-quota-sets/{project}", json={"quota_set": {"cores": 30}})
    assert updated.json() == {project: {"cores": 30}}
    assert "maps to no site" in updated.headers["warning"]
    synced = httpx.put(f"{url}/v1.0/{tenant}/os-quota-sets/{project}/sync")
    assert synced.json() == f"triggered quota sync for {project}"
    assert "maps to no site" in synced.headers["warning"] and synced.headers["warning"].startswith("299 ")

    def event() -> list[dict[str, Any]]:
        return list(httpx.get(f"{url}/v1/events", params={"kind": "quota.unmapped"}).json()["events"])

    def looked_up_everywhere() -> bool:
        unmapped = httpx.get(f"{url}/v1/quotas/{project}/usage").json()["unmapped_sites"]
        return len(unmapped) == 3 and all("not mapped on this site" in u["reason"] for u in unmapped)

    assert wait_for(looked_up_everywhere)
    assert wait_for(lambda: any(e["project_id"] == project for e in event()))
    usage = httpx.get(f"{url}/v1/quotas/{project}/usage").json()
    assert {u["site_name"] for u in usage["unmapped_sites"]} == set(KB_SITES)
    assert "maps to no site" in usage["warnings"][0]
    shown = httpx.get(f"{url}/v1/quotas/{project}").json()
    assert {u["site_name"] for u in shown["unmapped_sites"]} == set(KB_SITES)
    code, out = cli(url, "quota", "usage", project)
    assert code == 0 and "UNMAPPED SITE" in out and "WARNING" in out and "site-0002" in out
    code, out = cli(url, "quota", "show", project)
    assert code == 0 and "UNMAPPED SITE" in out and "maps to no site" in out
    # the sites keep their own limits: nothing was written anywhere
    assert all(project not in sim.state(s).nova.quotas for s in KB_SITES)

