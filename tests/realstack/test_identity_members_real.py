"""Membership ownership and grants across domains, on the two real sites (each with its own
Keystone). A fleet admin declares two domains: a user and two groups in ``home-<tag>``, a project in
``other-<tag>``, and the user's ``reader`` role on that project (the user's domain named apart). The
test waits, as a user waits, until the user logs in to the project of the other domain on both
sites and openstacksdk lists the grant. Then an admin adds the user by hand, on site1 only, to the
group ``legacy``; the declaration lists ``legacy`` afterwards, so the membership is adopted there
and added by Skyfleet on site2. Dropping every group takes the user out of them where Skyfleet added
the membership, and leaves ``legacy`` on site1 (the binding says ``kept``). Everything is purged
through the API, then swept by hand whatever happened.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, tidy, token, wait_for
from tests.realstack.test_identity_real import SITES

pytestmark = pytest.mark.realstack
PASSWORD = "Erin-first-pass-1"


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"home": f"home-{tag}", "other": f"other-{tag}", "project": f"lab-{tag}", "user": f"erin-{tag}",
            "blue": f"blue-{tag}", "legacy": f"legacy-{tag}"}


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any],
        names: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    try:
        with fleet_api(runtime_factory, clouds, SITES, site_timeout=30, audit_interval=5,
                       sync_audit_interval=5) as client:
            yield client, {"X-Auth-Token": token(clouds["site1"]["auth"])}
    finally:
        _sweep(clouds, names)


def _sweep(clouds: dict[str, Any], names: dict[str, str]) -> None:
    """Whatever is left: both domains disabled and deleted (their users, groups and projects go too)."""
    for site in SITES:
        try:
            idn = connect(clouds[site]["auth"]).identity
        except Exception as exc:  # a site down must not hide the test's own outcome
            print(f"clean-up: no connection to {site}: {exc}")
            continue
        for key in ("other", "home"):
            domain = idn.find_domain(names[key], ignore_missing=True)
            if domain is not None:
                tidy(idn.update_domain, domain, enabled=False)
                tidy(idn.delete_domain, domain, ignore_missing=True)


def _send(client: TestClient, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    """A request as a client that honours 503 + Retry-After."""
    for _ in range(3):
        response = client.request(method, path, headers=headers, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(int(response.headers.get("Retry-After", "1")))
    return response


def _groups_of(clouds: dict[str, Any], site: str, names: dict[str, str]) -> set[str] | None:
    idn = connect(clouds[site]["auth"]).identity
    domain = idn.find_domain(names["home"], ignore_missing=True)
    user = idn.find_user(names["user"], domain_id=domain.id, ignore_missing=True) if domain else None
    return None if user is None else {g.name for g in idn.user_groups(user)}


def _roles_in_token(clouds: dict[str, Any], site: str, names: dict[str, str]) -> set[str]:
    auth = {**clouds[site]["auth"], "username": names["user"], "password": PASSWORD,
            "project_name": names["project"], "user_domain_name": names["home"],
            "project_domain_name": names["other"]}
    try:
        conn = connect(auth)
        return set(conn.session.auth.get_access(conn.session).role_names)
    except Exception:  # any refusal means "not yet"
        return set()


def _granted(clouds: dict[str, Any], site: str, names: dict[str, str]) -> bool:
    """openstacksdk lists the grant: the user of one domain, reader on the project of the other."""
    idn = connect(clouds[site]["auth"]).identity
    home, other = idn.find_domain(names["home"]), idn.find_domain(names["other"])
    user = idn.find_user(names["user"], domain_id=home.id)
    project = idn.find_project(names["project"], domain_id=other.id)
    reader = idn.find_role("reader")
    found = list(idn.role_assignments(user_id=user.id, scope_project_id=project.id))
    return user.domain_id != project.domain_id and [a.role["id"] for a in found] == [reader.id]


def _memberships(client: TestClient, headers: dict[str, str], names: dict[str, str]) -> dict[str, Any]:
    shown = client.get(f"/v1/identity/users/{names['user']}", headers=headers).json()
    return {b["site_name"]: b["memberships"] for b in shown["bindings"] if b["status"] == "in-sync"}


def test_adopted_membership_kept_and_cross_domain_grant_on_both_real_sites(
        api: tuple[TestClient, dict[str, str]], clouds: dict[str, Any], names: dict[str, str]) -> None:
    client, headers = api
    home, other, user = names["home"], names["other"], names["user"]
    declared = [("domains", {"name": home}), ("domains", {"name": other}),
                ("groups", {"name": names["blue"], "domain": home}),
                ("groups", {"name": names["legacy"], "domain": home}),
                ("projects", {"name": names["project"], "domain": other}),
                ("users", {"name": user, "domain": home, "password": PASSWORD, "groups": [names["blue"]]})]
    for path, spec in declared:
        made = client.post(f"/v1/identity/{path}", json={"spec": spec}, headers=headers)
        assert made.status_code == 202, made.text
    grant = {"user": user, "user_domain": home, "project": names["project"], "domain": other, "role": "reader"}
    put = client.put("/v1/identity/role-assignments", json={"spec": grant}, headers=headers)
    assert put.status_code == 202, put.text
    ref = f"role-assignments/{put.json()['name']}"
    assert put.json()["name"] == f"user:{user}:in:{home}:{names['project']}:reader@{other}"
    refs = [ref, f"users/{user}", f"groups/{names['blue']}", f"groups/{names['legacy']}",
            f"projects/{names['project']}", f"domains/{home}", f"domains/{other}"]
    try:
        assert wait_for(lambda: all(_roles_in_token(clouds, s, names) == {"reader"} for s in SITES)), \
            client.get(f"/v1/identity/{ref}", headers=headers).text
        assert all(_granted(clouds, s, names) for s in SITES)

        # by hand, on site1 only: erin joins legacy before the declaration lists it
        idn = connect(clouds["site1"]["auth"]).identity
        domain = idn.find_domain(home)
        idn.add_user_to_group(idn.find_user(user, domain_id=domain.id),
                              idn.find_group(names["legacy"], domain_id=domain.id))
        listed = [names["blue"], names["legacy"]]
        changed = _send(client, "PATCH", f"/v1/identity/users/{user}", headers, json={"spec": {"groups": listed}})
        assert changed.status_code == 202, changed.text
        added = {names["blue"]: "added", names["legacy"]: "added"}
        assert wait_for(lambda: _memberships(client, headers, names) == {
            "site1": {**added, names["legacy"]: "adopted"}, "site2": added}), _memberships(client, headers, names)

        dropped = _send(client, "PATCH", f"/v1/identity/users/{user}", headers, json={"spec": {"groups": []}})
        assert dropped.status_code == 202, dropped.text
        assert wait_for(lambda: _groups_of(clouds, "site2", names) == set()
                        and _groups_of(clouds, "site1", names) == {names["legacy"]}
                        and _memberships(client, headers, names) == {"site1": {names["legacy"]: "kept"}, "site2": {}})
        time.sleep(6)  # a drift audit later: the adopted membership is still left alone
        assert _groups_of(clouds, "site1", names) == {names["legacy"]}
    finally:
        for each in refs:
            _send(client, "DELETE", f"/v1/identity/{each}", headers, params={"purge": True})
    assert wait_for(lambda: all(client.get(f"/v1/identity/{each}", headers=headers).status_code == 404
                                for each in refs), 120)
    for site in SITES:
        idn = connect(clouds[site]["auth"]).identity
        assert idn.find_domain(home, ignore_missing=True) is None, site
        assert idn.find_domain(other, ignore_missing=True) is None, site
