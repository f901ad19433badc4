"""Declared identity on the two real sites, which share nothing (each has its own Keystone). A fleet
admin declares a project, a group, a user with a password in that group, the user's ``member`` role
and the group's ``reader`` role on the project; the test waits, as a user waits, until the user logs
in with openstacksdk on both sites; removes the role by hand on site2 and waits for the drift audit
to grant it again; rotates the password and checks the old one fails on both sites. Everything it
made is purged through the API, then swept by hand whatever happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, token, wait_for

pytestmark = pytest.mark.realstack
SITES = ("site1", "site2")
FIRST, SECOND = "Alice-first-pass-1", "Alice-second-pass-2"








@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"project": f"acme-{tag}", "user": f"alice-{tag}", "group": f"ops-{tag}"}


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any],
        names: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = clouds["site1"]["auth"]
    try:
        with fleet_api(runtime_factory, clouds, SITES, site_timeout=30, audit_interval=5,
                       sync_audit_interval=5) as client:
            headers = {"X-Auth-Token": token(home)}
            yield client, headers
            _purge(client, headers, names)
    finally:
        _sweep(clouds, names)


def _purge(client: TestClient, headers: dict[str, str], names: dict[str, str]) -> None:
    """Remove the declarations with purge and wait until Skyfleet has deleted what it created."""
    refs = [f"role-assignments/user:{names['user']}:{names['project']}:member",
            f"role-assignments/group:{names['group']}:{names['project']}:reader",
            f"users/{names['user']}", f"groups/{names['group']}", f"projects/{names['project']}"]
    for ref in refs:
        client.delete(f"/v1/identity/{ref}", params={"purge": True}, headers=headers)
    assert wait_for(lambda: all(client.get(f"/v1/identity/{ref}", headers=headers).status_code == 404
                                for ref in refs), 120)


def _sweep(clouds: dict[str, Any], names: dict[str, str]) -> None:
    for site in SITES:
        idn = connect(clouds[site]["auth"]).identity
        for finder, deleter, name in ((idn.find_user, idn.delete_user, names["user"]),
                                      (idn.find_group, idn.delete_group, names["group"]),
                                      (idn.find_project, idn.delete_project, names["project"])):
            found = finder(name, domain_id="default", ignore_missing=True)
            if found is not None:
                deleter(found, ignore_missing=True)


def logs_in(clouds: dict[str, Any], site: str, names: dict[str, str], password: str) -> bool:
    auth = {**clouds[site]["auth"], "username": names["user"], "password": password,
            "project_name": names["project"]}
    try:
        connect(auth).identity.get_token()
    except Exception:  # any refusal means "not (yet)"
        return False
    return True


def member_on_site(admin: Any, names: dict[str, str]) -> tuple[Any, Any, Any] | None:
    """(project, user, member role) when the user holds member directly on the project, else None."""
    idn = admin.identity
    project = idn.find_project(names["project"], domain_id="default", ignore_missing=True)
    user = idn.find_user(names["user"], domain_id="default", ignore_missing=True)
    role = idn.find_role("member")
    if project is None or user is None:
        return None
    held = list(idn.role_assignments(scope_project_id=project.id, user_id=user.id, role_id=role.id))
    return (project, user, role) if held else None


def test_identity_declared_once_lands_on_both_real_sites(api: tuple[TestClient, dict[str, str]],
                                                         clouds: dict[str, Any], names: dict[str, str]) -> None:
    client, headers = api
    project, user, group = names["project"], names["user"], names["group"]
    for path, spec in (("projects", {"name": project, "description": "declared once"}),
                       ("groups", {"name": group}),
                       ("users", {"name": user, "password": FIRST, "default_project": project, "groups": [group]})):
        made = client.post(f"/v1/identity/{path}", json={"spec": spec}, headers=headers)
        assert made.status_code == 202 and FIRST not in made.text, made.text
    for spec in ({"user": user, "project": project, "role": "member"},
                 {"group": group, "project": project, "role": "reader"}):
        assert client.put("/v1/identity/role-assignments", json={"spec": spec}, headers=headers).status_code == 202

    admins = {site: connect(clouds[site]["auth"]) for site in SITES}
    assert wait_for(lambda: all(logs_in(clouds, s, names, FIRST) and member_on_site(admins[s], names) is not None
                                for s in SITES)), client.get(f"/v1/identity/users/{user}", headers=headers).text
    for site, admin in admins.items():
        groups = [g.name for g in admin.identity.user_groups(admin.identity.find_user(user, domain_id="default"))]
        assert groups == [group], site
    shown = client.get(f"/v1/identity/projects/{project}", headers=headers).json()
    assert wait_for(lambda: {b["status"] for b in client.get(f"/v1/identity/projects/{project}",
                                                              headers=headers).json()["bindings"]} == {"in-sync"})
    home_id = admins["site1"].identity.find_project(project, domain_id="default").id
    site2_id = admins["site2"].identity.find_project(project, domain_id="default").id
    mappings = {m["site_name"]: m for m in client.get(f"/v1/projects/{home_id}/mappings",
                                                       headers=headers).json()["mappings"]}
    assert (mappings["site2"]["source"], mappings["site2"]["remote_project_id"]) == ("explicit", site2_id), shown

    # drift: member removed by hand on site2; the audit grants it again
    found = member_on_site(admins["site2"], names)
    assert found is not None  # waited for above
    admins["site2"].identity.unassign_project_role_from_user(*found)
    assert wait_for(lambda: member_on_site(admins["site2"], names) is not None), "the drift audit did not repair"

    # rotation: the new password on both sites, the old one on neither
    rotated = client.patch(f"/v1/identity/users/{user}", json={"spec": {"password": SECOND}}, headers=headers)
    assert rotated.status_code == 202 and SECOND not in rotated.text
    assert wait_for(lambda: all(logs_in(clouds, s, names, SECOND) for s in SITES))
    assert not any(logs_in(clouds, s, names, FIRST) for s in SITES)
    body = client.get(f"/v1/identity/users/{user}", headers=headers).text
    assert FIRST not in body and SECOND not in body and "gAAAA" not in body
