"""A declaration changed while its task is writing to the site: the request cancels the task (its
result is never recorded), yet the write it was making lands. The next task finds the object, and it
must still count it as Skyfleet's (created, not adopted), however many times the change repeats;
otherwise a later removal leaves the user behind, or a grant in place.

The cancellation is made to fall between the site write and the record of its outcome: the driver
call is wrapped so that, just after the write, the declaration is changed through the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from skyfleet.drivers.openstack import identityapi
from tests.functional.test_identity_on_simulator import bindings, fleet, run, two_keystones

__all__ = ["fleet", "two_keystones"]  # fixtures used here


def after_write(
    monkeypatch: pytest.MonkeyPatch, name: str, when: Callable[..., bool], then: Callable[[], None]
) -> None:
    """Run ``then`` once, right after the first call of ``identityapi.<name>`` for which ``when`` holds."""
    real = getattr(identityapi, name)
    done: list[bool] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not done and when(*args, **kwargs):
            done.append(True)
            then()
        return out

    monkeypatch.setattr(identityapi, name, wrapped)


def test_a_user_made_by_superseded_tasks_stays_skyfleets(fleet: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sim, runtime, client, engine = fleet
    a = sim.site_names()[0]
    ks = sim.state(a).keystone
    where = {"sites": [a]}
    for group in ("blue", "green"):
        client.post("/v1/identity/groups", json={"spec": {"name": group}, "placement": where})
    run(runtime, engine)

    def patch(spec: dict[str, Any]) -> Callable[[], None]:
        def send() -> None:
            answer = client.patch("/v1/identity/users/erin", json={"spec": spec})
            assert answer.status_code == 202, answer.text

        return send

    # 1st task: creates erin, and is superseded right after (erin is to join green too)
    after_write(
        monkeypatch,
        "create_object",
        lambda _c, collection, body: collection == "users",
        patch({"groups": ["blue", "green"]}),
    )
    # 2nd task: finds erin, joins green, and is superseded right after (a new description)
    green = next(g["id"] for g in ks.groups.values() if g["name"] == "green")
    after_write(
        monkeypatch, "add_to_group", lambda _c, gid, _u: gid == green, patch({"description": "the third version"})
    )
    client.post("/v1/identity/users", json={"spec": {"name": "erin", "groups": ["blue"]}, "placement": where})
    run(runtime, engine)

    erin = bindings(client, "users/erin")[a]
    assert (erin["status"], erin["owned"]) == ("in-sync", True), erin["error"]
    assert erin["memberships"] == {"blue": "added", "green": "added"}
    assert ks.user_by_name("erin")["description"] == "the third version"  # type: ignore[index]
    assert client.delete("/v1/identity/users/erin", params={"purge": True}).status_code == 202
    run(runtime, engine)
    assert ks.user_by_name("erin") is None  # Skyfleet made it: purged, not left behind


def test_a_grant_made_by_a_superseded_task_is_revoked_with_its_declaration(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, runtime, client, engine = fleet
    a = sim.site_names()[0]
    ks = sim.state(a).keystone
    where = {"sites": [a]}
    client.post("/v1/identity/projects", json={"spec": {"name": "lab"}, "placement": where})
    client.post("/v1/identity/users", json={"spec": {"name": "erin"}, "placement": where})
    run(runtime, engine)
    spec = {"user": "erin", "project": "lab", "role": "member"}

    def again() -> None:  # the same grant, now allowed to create missing roles: something new, superseding
        answer = client.put(
            "/v1/identity/role-assignments", json={"spec": {**spec, "create_missing_roles": True}, "placement": where}
        )
        assert answer.status_code == 202, answer.text

    after_write(monkeypatch, "grant", lambda *_a, **_k: True, again)
    client.put("/v1/identity/role-assignments", json={"spec": spec, "placement": where})
    run(runtime, engine)
    grant = bindings(client, "role-assignments/user:erin:lab:member")[a]
    assert (grant["status"], grant["owned"]) == ("in-sync", True), grant
    erin, lab = ks.user_by_name("erin"), ks.project_by_name("lab")
    assert {r["name"] for r in ks.user_roles(erin["id"], lab["id"])} == {"member"}  # type: ignore[index]
    client.delete("/v1/identity/role-assignments/user:erin:lab:member")
    run(runtime, engine)
    assert ks.user_roles(erin["id"], lab["id"]) == []  # type: ignore[index]
