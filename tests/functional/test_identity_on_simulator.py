"""Declared identity on simulated sites, waiting as a user waits: the embedded workers and the drift
audit run on their own, and the test only polls the sites through openstacksdk (and reads the API,
which never advances the work). Four sites on two Keystones (two regions each), so every object is
written once per Keystone and recorded as Skyfleet's on both regions.

Then, with the engine driven by hand (no waiting needed): adoption, a conflict naming the differing
fields and ``force``, a role missing on some sites, removal (disable) and ``purge`` (delete).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.reconcile.engine import Engine, EngineConfig
from skyfleet.simulator import Simulator
from tests.engine_support import register_sites

PASSWORD, ROTATED = "alice-first-Pass1", "alice-second-Pass2"


@pytest.fixture
def two_keystones() -> Iterator[Simulator]:
    simulator = Simulator(sites=4, regions_per_keystone=2)
    simulator.start()
    yield simulator
    simulator.stop()


def login(sim: Simulator, site: str, password: str, project: str = "acme") -> bool:
    """Whether alice gets a token scoped to ``project`` on ``site`` with openstacksdk."""
    cloud = copy.deepcopy(sim.cloud(site))
    cloud["auth"].update(username="alice", password=password, project_name=project)
    try:
        openstack.connect(**cloud).identity.get_token()
    except Exception:  # any refusal means "not yet"
        return False
    return True


def roles_of(sim: Simulator, site: str, user: str, project: str) -> set[str]:
    ks = sim.state(site).keystone
    uid = next(u["id"] for u in ks.users.values() if u["name"] == user)
    pid = next(p["id"] for p in ks.projects.values() if p["name"] == project)
    return {r["name"] for r in ks.user_roles(uid, pid)}


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting until {what}")


def send(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """A request as a client that honours 503 + Retry-After: on PostgreSQL a request that supersedes
    open tasks (PATCH, DELETE, a second PUT) can lose a lock race with a worker folding the same
    bindings (a deadlock, answered 503)."""
    for _ in range(3):
        response = client.request(method, path, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(1)
    return response


def patch(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    return send(client, "PATCH", path, json=body)


def declare(client: TestClient) -> None:
    for path, body in (
            ("/v1/identity/projects", {"spec": {"name": "acme", "description": "Acme Corp"}}),
            ("/v1/identity/groups", {"spec": {"name": "ops"}}),
            ("/v1/identity/users", {"spec": {"name": "alice", "password": PASSWORD, "email": "alice@acme.test",
                                             "default_project": "acme", "groups": ["ops"]}})):
        assert client.post(path, json=body).status_code == 202, path
    for spec in ({"user": "alice", "project": "acme", "role": "member"},
                 {"group": "ops", "project": "acme", "role": "reader"}):
        assert client.put("/v1/identity/role-assignments", json={"spec": spec}).status_code == 202


def test_declared_once_converges_everywhere_repairs_drift_and_rotates(
        two_keystones: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    sim = two_keystones
    sites = sim.site_names()
    home = sim.cloud(sites[0])["auth"]["auth_url"]
    runtime = runtime_factory(db_url, engine_poll_interval=0.2, sync_audit_interval=1.0, home_auth_url=home)
    register_sites(runtime.factory, runtime.box, sim)
    with TestClient(create_app(runtime, start_workers=True)) as client:
        declare(client)
        wait_for(lambda: all(login(sim, s, PASSWORD) for s in sites), "alice logs in on every site")
        wait_for(lambda: all(roles_of(sim, s, "alice", "acme") == {"member", "reader"} for s in sites),
                 "alice holds member (her own) and reader (her group's) on acme everywhere")
        for site in (sites[0], sites[2]):  # one object per Keystone, though two regions wrote it
            ks = sim.state(site).keystone
            assert [p["name"] for p in ks.projects.values()].count("acme") == 1
            assert [u["name"] for u in ks.users.values()].count("alice") == 1
        for path in ("projects/acme", "users/alice", "groups/ops", "role-assignments/user:alice:acme:member"):
            wait_for(lambda p=path: {b["status"] for b in client.get(f"/v1/identity/{p}").json()["bindings"]}
                     == {"in-sync"}, f"{path} is in sync everywhere")
            assert all(b["owned"] for b in client.get(f"/v1/identity/{path}").json()["bindings"]), path
        # the project mapping follows: the home Keystone's id maps to the other Keystone's project
        ks_home, ks_other = sim.state(sites[0]).keystone, sim.state(sites[2]).keystone
        home_id = ks_home.project_by_name("acme")["id"]  # type: ignore[index]
        mapped = client.get(f"/v1/projects/{home_id}/mappings").json()
        remote = {m["site_name"]: (m["source"], m["remote_project_id"]) for m in mapped["mappings"]}
        other_id = ks_other.project_by_name("acme")["id"]  # type: ignore[index]
        assert remote == {**dict.fromkeys(sites[:2], ("shared-keystone", home_id)),
                          **dict.fromkeys(sites[2:], ("explicit", other_id))}

        # drift: the role is removed by hand on the second Keystone; the audit grants it again
        alice = ks_other.user_by_name("alice")["id"]  # type: ignore[index]
        ks_other.assignments = {a for a in ks_other.assignments if a[0] != alice}
        wait_for(lambda: roles_of(sim, sites[2], "alice", "acme") == {"member", "reader"},
                 "the drift audit gives alice her role back")
        wait_for(lambda: any("user:alice:acme:member" in e["message"] for e in client.get(
            "/v1/events", params={"kind": "sync.drift_repaired"}).json()["events"]), "the repair is an event")

        # rotation: the new password everywhere, the old one nowhere
        rotated = patch(client, "/v1/identity/users/alice", {"spec": {"password": ROTATED}})
        assert rotated.status_code == 202 and ROTATED not in rotated.text, rotated.text
        wait_for(lambda: all(login(sim, s, ROTATED) for s in sites), "the rotated password works everywhere")
        assert not any(login(sim, s, PASSWORD) for s in sites)
        # an out-of-band password change is drift too
        ks_other.users[alice]["_password"] = "changed-by-hand"
        wait_for(lambda: login(sim, sites[3], ROTATED), "the audit sets the declared password back")

        # the declaration goes (purge): the projects are deleted and the recorded mapping rows dropped
        assert send(client, "DELETE", "/v1/identity/projects/acme", params={"purge": True}).status_code == 202
        wait_for(lambda: ks_home.project_by_name("acme") is None and ks_other.project_by_name("acme") is None,
                 "the project is deleted from both Keystones")
        wait_for(lambda: {m["source"] for m in client.get(f"/v1/projects/{home_id}/mappings").json()["mappings"]
                          if m["site_name"] in sites[2:]} == {"by-name"}, "the recorded mappings are dropped")


@pytest.fixture
def fleet(two_keystones: Simulator, runtime_factory: Callable[..., Runtime],
          db_url: str) -> Iterator[tuple[Simulator, Runtime, TestClient, Engine]]:
    sim = two_keystones
    runtime = runtime_factory(db_url)
    register_sites(runtime.factory, runtime.box, sim)
    engine = Engine(runtime.factory, box=runtime.box, config=EngineConfig(site_timeout=5))
    with TestClient(create_app(runtime, start_workers=False)) as client:
        yield sim, runtime, client, engine


def run(runtime: Runtime, engine: Engine) -> None:
    for _ in range(6):
        with transaction(runtime.factory) as session:
            session.execute(update(Task).where(Task.state == "pending").values(next_attempt_at=utcnow()))
        if engine.run_until_idle() == 0:
            return


def bindings(client: TestClient, path: str) -> dict[str, dict[str, Any]]:
    return {b["site_name"]: b for b in client.get(f"/v1/identity/{path}").json()["bindings"]}


def test_adopts_refuses_differences_forces_and_fails_missing_roles(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, _, c, _ = sim.site_names()
    ks_a, ks_c = sim.state(a).keystone, sim.state(c).keystone
    ks_a.add_user("carol", None, None)  # identical: adopted
    ks_c.users[ks_c.add_user("carol", None, None)]["email"] = "carol@elsewhere.test"  # differs
    client.post("/v1/identity/users", json={"spec": {"name": "carol", "email": None}})
    run(runtime, engine)
    by_site = bindings(client, "users/carol")
    assert by_site[a]["status"] == "in-sync" and by_site[a]["owned"] is False
    assert by_site[c]["status"] == "failed" and "(email)" in by_site[c]["error"] and "force" in by_site[c]["error"]
    client.patch("/v1/identity/users/carol", json={"force": True})
    run(runtime, engine)
    assert {b["status"] for b in bindings(client, "users/carol").values()} == {"in-sync"}
    assert ks_c.user_by_name("carol").get("email") is None  # type: ignore[union-attr]
    # a role only the first Keystone has: the other sites fail naming it
    ks_a.roles["r-auditor"] = {"id": "r-auditor", "name": "auditor", "domain_id": None, "options": {}}
    client.post("/v1/identity/projects", json={"spec": {"name": "audit"}})
    client.put("/v1/identity/role-assignments", json={"spec": {"user": "carol", "project": "audit",
                                                               "role": "auditor"}})
    run(runtime, engine)
    by_site = bindings(client, "role-assignments/user:carol:audit:auditor")
    assert by_site[a]["status"] == "in-sync"
    assert by_site[c]["status"] == "failed" and "no role 'auditor'" in by_site[c]["error"]


def test_removal_disables_and_purge_deletes_only_what_skyfleet_created(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, _, c, _ = sim.site_names()
    ks_a, ks_c = sim.state(a).keystone, sim.state(c).keystone
    ks_c.add_project("legacy", "")  # identical, pre-existing: adopted, never touched
    for name in ("made", "legacy"):
        client.post("/v1/identity/projects", json={"spec": {"name": name}})
    run(runtime, engine)
    assert client.delete("/v1/identity/projects/made").status_code == 202
    assert client.delete("/v1/identity/projects/legacy", params={"purge": True}).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/identity/projects/made").status_code == 404
    assert ks_a.project_by_name("made")["enabled"] is False  # type: ignore[index]
    assert ks_c.project_by_name("legacy")["enabled"] is True  # type: ignore[index]
    assert ks_a.project_by_name("legacy") is None  # Skyfleet created it there: purged
    client.post("/v1/identity/projects", json={"spec": {"name": "made", "enabled": False}})
    run(runtime, engine)
    client.delete("/v1/identity/projects/made", params={"purge": True})
    run(runtime, engine)
    assert ks_a.project_by_name("made") is not None  # adopted the second time round: kept


def test_memberships_follow_the_groups_list(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a = sim.site_names()[0]
    ks = sim.state(a).keystone
    for group in ("blue", "green"):
        client.post("/v1/identity/groups", json={"spec": {"name": group}})
    client.post("/v1/identity/users", json={"spec": {"name": "erin", "groups": ["blue", "green"]}})
    run(runtime, engine)

    def groups_of_erin() -> set[str]:
        erin = ks.user_by_name("erin")["id"]  # type: ignore[index]
        return {ks.groups[g]["name"] for (g, u) in ks.members if u == erin}

    assert groups_of_erin() == {"blue", "green"}
    ks.members.add((next(g for g, v in ks.groups.items() if v["name"] == "blue"), "someone-else"))
    client.patch("/v1/identity/users/erin", json={"spec": {"groups": ["green"]}})
    run(runtime, engine)
    assert groups_of_erin() == {"green"}
    assert {b["status"] for b in bindings(client, "users/erin").values()} == {"in-sync"}
    client.patch("/v1/identity/users/erin", json={"spec": {"groups": ["green", "blue"]}})
    run(runtime, engine)
    assert groups_of_erin() == {"blue", "green"}  # listed again: joined again, not left


def test_domain_and_inherited_grants_and_roles_created_when_missing(fleet: Any) -> None:
    """A grant on the domain itself, an inherited one that reaches every project of the domain (a
    token scoped to one of them carries the role), and a role missing on one Keystone: created there
    with ``create_missing_roles`` (said in the binding), never without it. Removal revokes both
    grants and keeps the created role."""
    sim, runtime, client, engine = fleet
    a, _, c, _ = sim.site_names()
    ks_a, ks_c = sim.state(a).keystone, sim.state(c).keystone
    client.post("/v1/identity/users", json={"spec": {"name": "dora"}})
    client.post("/v1/identity/projects", json={"spec": {"name": "lab"}})
    on_domain = client.put("/v1/identity/role-assignments", json={"spec": {"user": "dora", "role": "reader"}})
    inherited = client.put("/v1/identity/role-assignments",
                           json={"spec": {"user": "dora", "role": "member", "inherited": True}})
    assert on_domain.status_code == inherited.status_code == 202, inherited.text
    ks_a.roles["r-auditor"] = {"id": "r-auditor", "name": "auditor", "domain_id": None, "options": {}}
    strict = {"user": "dora", "project": "lab", "role": "auditor"}
    client.put("/v1/identity/role-assignments", json={"spec": strict})
    run(runtime, engine)
    for ref in ("user:dora:domain:Default:reader", "inherited:user:dora:domain:Default:member"):
        assert {b["status"] for b in bindings(client, f"role-assignments/{ref}").values()} == {"in-sync"}, ref
    dora = ks_c.user_by_name("dora")["id"]  # type: ignore[index]
    assert roles_of(sim, c, "dora", "lab") == {"member"}  # inherited from the domain; the direct one is not
    assert ("domains", "default", "users", dora, ks_c.role_id("reader"), False) in ks_c.scoped_grants
    assert bindings(client, "role-assignments/user:dora:lab:auditor")[c]["status"] == "failed"
    assert ks_c.domain_by_name("Default") and not any(r["name"] == "auditor" for r in ks_c.roles.values())
    client.put("/v1/identity/role-assignments", json={"spec": {**strict, "create_missing_roles": True}})
    run(runtime, engine)
    by_site = bindings(client, "role-assignments/user:dora:lab:auditor")
    assert {b["status"] for b in by_site.values()} == {"in-sync"}
    assert roles_of(sim, c, "dora", "lab") == {"member", "auditor"}
    assert roles_of(sim, a, "dora", "lab") == {"member", "auditor"}
    assert [r["id"] for r in ks_a.roles.values() if r["name"] == "auditor"] == ["r-auditor"]  # not a second
    for ref in ("user:dora:domain:Default:reader", "inherited:user:dora:domain:Default:member",
                "user:dora:lab:auditor"):
        assert client.delete(f"/v1/identity/role-assignments/{ref}").status_code == 202
    run(runtime, engine)
    assert roles_of(sim, c, "dora", "lab") == set() and not ks_c.scoped_grants
    assert any(r["name"] == "auditor" for r in ks_c.roles.values())  # the created role is kept


def test_domains_declared_once_wait_for_their_objects_and_removal_disables_then_purges(fleet: Any) -> None:
    """A project, a user and a group declared in a domain Skyfleet also declares wait for that domain
    (retried, not failed); one in a domain nobody declares fails naming it. Removing the domain
    disables it; purge deletes it (disabled first, as Keystone requires). ``Default`` is refused."""
    sim, runtime, client, engine = fleet
    a, _, c, _ = sim.site_names()
    ks_a, ks_c = sim.state(a).keystone, sim.state(c).keystone
    # the objects first, the domain last: their tasks find no domain and wait for it
    client.post("/v1/identity/projects", json={"spec": {"name": "lab", "domain": "Acme"}})
    client.post("/v1/identity/groups", json={"spec": {"name": "ops", "domain": "Acme"}})
    client.post("/v1/identity/users", json={"spec": {"name": "dora", "domain": "Acme", "groups": ["ops"]}})
    client.post("/v1/identity/projects", json={"spec": {"name": "stray", "domain": "Nowhere"}})
    made = client.post("/v1/identity/domains", json={"spec": {"name": "Acme", "description": "acme corp"}})
    assert made.status_code == 202, made.text
    client.put("/v1/identity/role-assignments",
               json={"spec": {"user": "dora", "role": "member", "domain": "Acme", "inherited": True}})
    run(runtime, engine)
    for path in ("domains/Acme", "projects/lab", "groups/ops", "users/dora",
                 "role-assignments/inherited:user:dora:domain:Acme:member"):
        assert {b["status"] for b in bindings(client, path).values()} == {"in-sync"}, path
    assert {b["owned"] for b in bindings(client, "domains/Acme").values()} == {True}
    for ks, site in ((ks_a, a), (ks_c, c)):
        acme = ks.domain_by_name("Acme")
        assert acme is not None and acme["description"] == "acme corp" and acme["enabled"] is True
        assert ks.project_by_name("lab", acme["id"]) is not None
        assert roles_of(sim, site, "dora", "lab") == {"member"}
    stray = bindings(client, "projects/stray")
    assert {b["status"] for b in stray.values()} == {"failed"} and "no domain 'Nowhere'" in stray[a]["error"]
    for name in ("Default", "default"):
        refused = client.post("/v1/identity/domains", json={"spec": {"name": name}})
        assert refused.status_code == 400 and "never manages it" in refused.text
    ks_c.domain_by_name("Acme")["description"] = "changed by hand"  # type: ignore[index]
    client.patch("/v1/identity/domains/Acme", json={"spec": {"description": "Acme Corporation"}})
    run(runtime, engine)
    assert ks_c.domain_by_name("Acme")["description"] == "Acme Corporation"  # type: ignore[index]
    assert client.delete("/v1/identity/domains/Acme").status_code == 202
    run(runtime, engine)
    assert ks_a.domain_by_name("Acme")["enabled"] is False  # type: ignore[index]
    client.post("/v1/identity/domains", json={"spec": {"name": "Acme", "enabled": False}})
    run(runtime, engine)
    assert {b["owned"] for b in bindings(client, "domains/Acme").values()} == {False}  # adopted now
    client.delete("/v1/identity/domains/Acme", params={"purge": True})
    run(runtime, engine)
    assert ks_a.domain_by_name("Acme") is not None  # adopted the second time round: kept
    client.post("/v1/identity/domains", json={"spec": {"name": "Temp"}})
    client.post("/v1/identity/projects", json={"spec": {"name": "tmp", "domain": "Temp"}})
    client.put("/v1/identity/role-assignments", json={"spec": {"user": "dora", "role": "reader", "domain": "Temp"}})
    run(runtime, engine)
    assert ks_a.project_by_name("tmp", ks_a.domain_by_name("Temp")["id"]) is not None  # type: ignore[index]
    client.delete("/v1/identity/domains/Temp", params={"purge": True})
    run(runtime, engine)
    assert ks_a.domain_by_name("Temp") is None and ks_c.domain_by_name("Temp") is None
    # what lived in the purged domain went with it: removing its declarations finds nothing to do
    for ref in ("projects/tmp", "role-assignments/user:dora:domain:Temp:reader"):
        assert client.delete(f"/v1/identity/{ref}").status_code in (202, 204)
    run(runtime, engine)
    for ref in ("projects/tmp", "role-assignments/user:dora:domain:Temp:reader"):
        assert client.get(f"/v1/identity/{ref}").status_code == 404, ref


def in_sync(client: TestClient, path: str) -> bool:
    shown = client.get(f"/v1/identity/{path}")
    return shown.status_code == 200 and bool(shown.json()["bindings"]) and \
        {b["status"] for b in shown.json()["bindings"]} == {"in-sync"}


def memberships(client: TestClient, path: str) -> dict[str, dict[str, str] | None]:
    return {b["site_name"]: b["memberships"] for b in client.get(f"/v1/identity/{path}").json()["bindings"]}


def groups_of(sim: Simulator, site: str, user: str) -> set[str] | None:
    ks = sim.state(site).keystone
    found = ks.user_by_name(user)
    if found is None:
        return None
    return {ks.groups[g]["name"] for (g, u) in ks.members if u == found["id"] and g in ks.groups}


def test_only_memberships_skyfleet_added_are_removed_even_after_a_restart(
        two_keystones: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    """erin already exists on the first Keystone, a member of ``legacy``; Skyfleet declares her in
    ``blue``, ``green`` and ``legacy``. The bindings say which memberships Skyfleet added and which it
    adopted. After a restart of Skyfleet (the record is in the database), dropping ``blue`` and
    ``legacy`` takes her out of both on the second Keystone (Skyfleet added both there) but only out
    of ``blue`` on the first (``legacy`` is kept). A purge then deletes her where Skyfleet created
    her and, where it adopted her, only takes her out of the groups it added her to."""
    sim = two_keystones
    a, b, c, d = sim.site_names()
    ks_a = sim.state(a).keystone
    erin = ks_a.add_user("erin", None, None)  # identical to the declaration: adopted
    ks_a.groups["g-legacy"] = {"id": "g-legacy", "name": "legacy", "domain_id": "default", "description": ""}
    ks_a.members.add(("g-legacy", erin))
    first = runtime_factory(db_url, engine_poll_interval=0.2, sync_audit_interval=1.0)
    register_sites(first.factory, first.box, sim)
    with TestClient(create_app(first, start_workers=True)) as client:
        for group in ("blue", "green", "legacy"):
            assert client.post("/v1/identity/groups", json={"spec": {"name": group}}).status_code == 202
        made = client.post("/v1/identity/users", json={"spec": {"name": "erin", "groups": ["blue", "green", "legacy"]}})
        assert made.status_code == 202, made.text
        every = {"blue": "added", "green": "added", "legacy": "added"}
        adopted = {**every, "legacy": "adopted"}
        wait_for(lambda: in_sync(client, "users/erin") and memberships(client, "users/erin") == {
            a: adopted, b: adopted, c: every, d: every}, "each site reports who made each membership")
        assert groups_of(sim, a, "erin") == groups_of(sim, c, "erin") == {"blue", "green", "legacy"}
        owned = {x["site_name"]: x["owned"] for x in client.get("/v1/identity/users/erin").json()["bindings"]}
        assert owned == {a: False, b: False, c: True, d: True}

    second = runtime_factory(db_url, engine_poll_interval=0.2, sync_audit_interval=1.0)
    with TestClient(create_app(second, start_workers=True)) as client:
        assert patch(client, "/v1/identity/users/erin", {"spec": {"groups": ["green"]}}).status_code == 202
        wait_for(lambda: groups_of(sim, c, "erin") == {"green"} and groups_of(sim, a, "erin") == {"green", "legacy"}
                 and in_sync(client, "users/erin"), "blue left everywhere, legacy only where Skyfleet added it")
        kept = {"green": "added", "legacy": "kept"}
        wait_for(lambda: memberships(client, "users/erin") == {a: kept, b: kept, c: {"green": "added"},
                                                                d: {"green": "added"}}, "the bindings say so")
        time.sleep(2.5)  # two drift audits: the kept membership stays kept
        assert groups_of(sim, a, "erin") == {"green", "legacy"}

        assert send(client, "DELETE", "/v1/identity/users/erin", params={"purge": True}).status_code == 202
        wait_for(lambda: client.get("/v1/identity/users/erin").status_code == 404, "the declaration is gone")
        assert groups_of(sim, c, "erin") is None  # Skyfleet created her there: deleted
        assert groups_of(sim, a, "erin") == {"legacy"}  # adopted: kept, out of the group Skyfleet added


def test_a_user_of_one_domain_holds_roles_in_another(
        two_keystones: Simulator, runtime_factory: Callable[..., Runtime], db_url: str) -> None:
    """dana and the group ops live in Aco; the project lab lives in Bco. dana holds ``reader`` on lab
    and ops holds ``member`` on the domain Bco (inherited: on its projects), declared with the actor's
    domain named apart. Spelt either way round, the declaration is the same one. dana logs in to lab
    with openstacksdk on every site and her token carries both roles; removal revokes them."""
    sim = two_keystones
    sites = sim.site_names()
    runtime = runtime_factory(db_url, engine_poll_interval=0.2, sync_audit_interval=1.0)
    register_sites(runtime.factory, runtime.box, sim)
    with TestClient(create_app(runtime, start_workers=True)) as client:
        for path, spec in (("domains", {"name": "Aco"}), ("domains", {"name": "Bco"}),
                           ("projects", {"name": "lab", "domain": "Bco"}), ("groups", {"name": "ops", "domain": "Aco"}),
                           ("users", {"name": "dana", "domain": "Aco", "password": PASSWORD, "groups": ["ops"]})):
            assert client.post(f"/v1/identity/{path}", json={"spec": spec}).status_code == 202, path
        for bad, why in (({"user": "dana", "group_domain": "Aco", "role": "reader"}, "group_domain"),
                         ({"user": "dana", "user_domain": "Aco", "role": "reader", "domain": "Bco",
                           "project_domain": "Bco"}, "project_domain"),
                         ({"group": "ops", "user_domain": "Aco", "role": "reader"}, "user_domain"),
                         ({"user": "dana", "user_domain": "no:colon", "role": "reader"}, "user_domain")):
            refused = client.put("/v1/identity/role-assignments", json={"spec": bad})
            assert refused.status_code == 400 and why in refused.text, refused.text
        direct = client.put("/v1/identity/role-assignments", json={"spec": {
            "user": "dana", "user_domain": "Aco", "project": "lab", "domain": "Bco", "role": "reader"}})
        assert direct.status_code == 202 and direct.json()["name"] == "user:dana:in:Aco:lab:reader@Bco", direct.text
        same = send(client, "PUT", "/v1/identity/role-assignments", json={"spec": {
            "user": "dana", "domain": "Aco", "project": "lab", "project_domain": "Bco", "role": "reader"}})
        assert same.status_code == 202 and same.json()["id"] == direct.json()["id"]
        # asking again for what is declared starts nothing: the first grant's tasks are not superseded
        assert same.json()["operation_id"] == direct.json()["operation_id"], same.text
        inherited = client.put("/v1/identity/role-assignments", json={"spec": {
            "group": "ops", "group_domain": "Aco", "domain": "Bco", "role": "member", "inherited": True}})
        assert inherited.json()["name"] == "inherited:group:ops:in:Aco:domain:Bco:member", inherited.text

        def dana_roles(site: str) -> set[str]:
            cloud = copy.deepcopy(sim.cloud(site))
            cloud["auth"].update(username="dana", password=PASSWORD, project_name="lab", user_domain_name="Aco",
                                 project_domain_name="Bco")
            try:
                conn = openstack.connect(**cloud)
                return set(conn.session.auth.get_access(conn.session).role_names)
            except Exception:  # any refusal means "not yet"
                return set()

        wait_for(lambda: all(dana_roles(s) == {"reader", "member"} for s in sites),
                 "dana of Aco holds reader on lab of Bco, and member through ops, on every site")
        refs = ("user:dana:in:Aco:lab:reader@Bco", "inherited:group:ops:in:Aco:domain:Bco:member")
        for ref in refs:
            wait_for(lambda r=ref: in_sync(client, f"role-assignments/{r}"), f"{ref} is in sync")
            shown = client.get(f"/v1/identity/role-assignments/{ref}").json()["bindings"]
            assert all(b["owned"] for b in shown), shown  # Skyfleet granted it: it is Skyfleet's to revoke
            assert send(client, "DELETE", f"/v1/identity/role-assignments/{ref}").status_code == 202
        for ref in refs:
            wait_for(lambda r=ref: client.get(f"/v1/identity/role-assignments/{r}").status_code == 404,
                     f"{ref} is revoked everywhere")
        ks = sim.state(sites[2]).keystone
        assert not ks.scoped_grants and not any(u == ks.user_by_name("dana", ks.domain_by_name("Aco")["id"])["id"]
                                                for (u, _, _) in ks.assignments)  # type: ignore[index]
