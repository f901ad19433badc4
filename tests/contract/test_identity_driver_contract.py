"""Contract: the identity driver (``skyfleet.drivers.openstack.identityapi``) against the sites.

Each test calls the driver functions themselves, as Skyfleet's admin credential does when it
provisions declared identity: projects, users (with a password the site then accepts), groups,
memberships, and role assignments of users and groups on projects and domains, inherited (OS-INHERIT)
ones included, and roles created when missing. Keystone's answers are pinned:
absent objects are None/False, a duplicate name is 409 (temporary for the engine: the next attempt
finds the object), an unknown domain is 400, a missing role is None (the kind fails that binding).
"""

from __future__ import annotations

from collections.abc import Iterator

import openstack.connection
import pytest
from contract_support import Site, quiet, skyfleet_auth, unique

from skyfleet.drivers.openstack import identityapi, syncapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import PermanentSiteError, TemporarySiteError

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def pool() -> SitePool:
    return SitePool()


@pytest.fixture(params=[0, 1], ids=["first", "second"])
def conn(request: pytest.FixtureRequest, sites: list[Site], pool: SitePool) -> openstack.connection.Connection:
    """The admin connection Skyfleet itself would build, on each of the two sites."""
    return pool.connection(skyfleet_auth(sites[request.param]), timeout=60)


@pytest.fixture
def made(conn: openstack.connection.Connection) -> Iterator[list[tuple[identityapi.Collection, str]]]:
    """Objects a test created, deleted afterwards whatever happens."""
    objects: list[tuple[identityapi.Collection, str]] = []
    yield objects
    for collection, ident in reversed(objects):
        quiet(identityapi.delete_object, conn, collection, ident)


@pytest.mark.covers("identityapi.domain_id", "identityapi.find_named", "identityapi.create_object",
                    "identityapi.update_object", "identityapi.delete_object")
def test_project_lifecycle_by_name_in_domain(conn: openstack.connection.Connection,
                                             made: list[tuple[identityapi.Collection, str]]) -> None:
    domain = identityapi.domain_id(conn, "Default")
    assert domain == "default"
    assert identityapi.domain_id(conn, unique("no-such-domain")) is None
    name = unique("project")
    assert identityapi.find_named(conn, "projects", name, domain) is None
    project = identityapi.create_object(conn, "projects", {"name": name, "domain_id": domain,
                                                           "description": "contract", "enabled": True})
    made.append(("projects", project["id"]))
    assert (project["name"], project["domain_id"], project["description"], project["enabled"]) == \
        (name, domain, "contract", True)
    found = identityapi.find_named(conn, "projects", name, domain)
    assert found is not None and found["id"] == project["id"]
    with pytest.raises(TemporarySiteError) as dup:  # 409: the next attempt finds it
        identityapi.create_object(conn, "projects", {"name": name, "domain_id": domain})
    assert dup.value.status == 409
    with pytest.raises(PermanentSiteError) as bad:  # keystone answers 400 for an unknown domain
        identityapi.create_object(conn, "projects", {"name": unique("project"), "domain_id": unique("dom")})
    assert bad.value.status == 400 and "Could not find domain" in bad.value.message
    changed = identityapi.update_object(conn, "projects", project["id"], {"enabled": False, "description": "x"})
    assert (changed["enabled"], changed["description"]) == (False, "x")
    assert identityapi.delete_object(conn, "projects", project["id"]) is True
    assert identityapi.delete_object(conn, "projects", project["id"]) is False
    assert identityapi.find_named(conn, "projects", name, domain) is None


@pytest.mark.covers("identityapi.password_works", "identityapi.create_object", "identityapi.update_object")
def test_user_password_set_checked_and_rotated(conn: openstack.connection.Connection,
                                               made: list[tuple[identityapi.Collection, str]]) -> None:
    name = unique("user")
    user = identityapi.create_object(conn, "users", {"name": name, "domain_id": "default", "password": "first-pass",
                                                     "email": "u@example.org", "description": ""})
    made.append(("users", user["id"]))
    assert "password" not in user and user["email"] == "u@example.org" and user["enabled"] is True
    assert identityapi.password_works(conn, user["id"], "first-pass") is True
    assert identityapi.password_works(conn, user["id"], "wrong-pass") is False
    identityapi.update_object(conn, "users", user["id"], {"password": "second-pass"})
    assert identityapi.password_works(conn, user["id"], "second-pass") is True
    assert identityapi.password_works(conn, user["id"], "first-pass") is False
    identityapi.update_object(conn, "users", user["id"], {"enabled": False})
    assert identityapi.password_works(conn, user["id"], "second-pass") is False  # disabled: 401 too
    with pytest.raises(TemporarySiteError) as dup:
        identityapi.create_object(conn, "users", {"name": name, "domain_id": "default"})
    assert dup.value.status == 409


@pytest.mark.covers("identityapi.in_group", "identityapi.add_to_group", "identityapi.remove_from_group")
def test_group_membership(conn: openstack.connection.Connection,
                          made: list[tuple[identityapi.Collection, str]]) -> None:
    group = identityapi.create_object(conn, "groups", {"name": unique("group"), "domain_id": "default",
                                                       "description": "ops"})
    made.append(("groups", group["id"]))
    assert (group["domain_id"], group["description"]) == ("default", "ops")
    user = identityapi.create_object(conn, "users", {"name": unique("user"), "domain_id": "default"})
    made.append(("users", user["id"]))
    assert identityapi.in_group(conn, group["id"], user["id"]) is False
    identityapi.add_to_group(conn, group["id"], user["id"])
    identityapi.add_to_group(conn, group["id"], user["id"])  # idempotent
    assert identityapi.in_group(conn, group["id"], user["id"]) is True
    assert identityapi.remove_from_group(conn, group["id"], user["id"]) is True
    assert identityapi.remove_from_group(conn, group["id"], user["id"]) is False
    assert identityapi.in_group(conn, "no-such-group", user["id"]) is False


@pytest.mark.covers("identityapi.find_role", "identityapi.has_grant", "identityapi.grant", "identityapi.revoke")
@pytest.mark.parametrize("actor", ["users", "groups"])
def test_role_assignment_of_user_or_group(conn: openstack.connection.Connection, actor: identityapi.Actor,
                                          made: list[tuple[identityapi.Collection, str]]) -> None:
    role = identityapi.find_role(conn, "reader")
    assert role is not None
    assert identityapi.find_role(conn, unique("no-such-role")) is None
    project = identityapi.create_object(conn, "projects", {"name": unique("project"), "domain_id": "default"})
    made.append(("projects", project["id"]))
    who = identityapi.create_object(conn, actor, {"name": unique(actor[:-1]), "domain_id": "default"})
    made.append((actor, who["id"]))
    ids = {"target_id": project["id"], "actor": actor, "actor_id": who["id"], "role_id": role}
    assert identityapi.has_grant(conn, **ids) is False
    identityapi.grant(conn, **ids)
    identityapi.grant(conn, **ids)  # idempotent
    assert identityapi.has_grant(conn, **ids) is True
    assert identityapi.revoke(conn, **ids) is True
    assert identityapi.revoke(conn, **ids) is False
    assert identityapi.has_grant(conn, **ids) is False
    with pytest.raises(PermanentSiteError) as missing:  # a grant of a role the site lacks: 404
        identityapi.grant(conn, **{**ids, "role_id": "no-such-role"})
    assert missing.value.status == 404


@pytest.mark.covers("identityapi.admin_role_ids", "identityapi.holds_any_role")
def test_who_holds_the_admin_role(conn: openstack.connection.Connection,
                                  made: list[tuple[identityapi.Collection, str]]) -> None:
    """The sync.user kind refuses to take over a user holding the admin role, or to add a user to a
    group holding it: a user holds a role directly or through a group, on a project or a domain."""
    admin_roles = identityapi.admin_role_ids(conn)
    assert identityapi.find_role(conn, "admin") in admin_roles
    own_user, _ = syncapi.current_ids(conn)
    assert identityapi.holds_any_role(conn, "users", own_user, admin_roles) is True
    reader = identityapi.find_role(conn, "reader")
    assert reader is not None
    project = identityapi.create_object(conn, "projects", {"name": unique("project"), "domain_id": "default"})
    made.append(("projects", project["id"]))
    group = identityapi.create_object(conn, "groups", {"name": unique("group"), "domain_id": "default"})
    made.append(("groups", group["id"]))
    user = identityapi.create_object(conn, "users", {"name": unique("user"), "domain_id": "default"})
    made.append(("users", user["id"]))
    for actor, who in (("users", user["id"]), ("groups", group["id"])):
        assert identityapi.holds_any_role(conn, actor, who, admin_roles | {reader}) is False  # type: ignore[arg-type]
    identityapi.grant(conn, target_id=project["id"], actor="groups", actor_id=group["id"], role_id=reader)
    assert identityapi.holds_any_role(conn, "groups", group["id"], {reader}) is True
    identityapi.add_to_group(conn, group["id"], user["id"])
    assert identityapi.holds_any_role(conn, "users", user["id"], {reader}) is True  # through its group
    assert identityapi.holds_any_role(conn, "users", user["id"], admin_roles) is False
    other = identityapi.create_object(conn, "users", {"name": unique("user"), "domain_id": "default"})
    made.append(("users", other["id"]))
    identityapi.grant(conn, target="domains", target_id="default", actor="users", actor_id=other["id"],
                      role_id=reader, inherited=True)
    assert identityapi.holds_any_role(conn, "users", other["id"], {reader}) is True  # on a domain, inherited
    assert identityapi.holds_any_role(conn, "users", other["id"], set()) is False
    # a role that implies admin would carry it in tokens: Keystone refuses to make one by default
    # (``[assignment] prohibited_implied_role``), and this refusal creates nothing
    admin = identityapi.find_role(conn, "admin")
    refused = conn.identity.request(f"/roles/{reader}/implies/{admin}", "PUT", raise_exc=False)
    assert refused.status_code == 403 and "cannot be an implied role" in refused.text


@pytest.mark.covers("identityapi.find_named")
def test_own_credential_is_found_like_any_user(conn: openstack.connection.Connection) -> None:
    """The kinds refuse Skyfleet's own user and project by comparing ids with ``current_ids``."""
    user_id, project_id = syncapi.current_ids(conn)
    admin = identityapi.find_named(conn, "users", "admin", "default")
    project = identityapi.find_named(conn, "projects", "admin", "default")
    assert admin is not None and project is not None
    assert (admin["id"], project["id"]) == (user_id, project_id)


@pytest.mark.covers("identityapi.has_grant", "identityapi.grant", "identityapi.revoke")
@pytest.mark.parametrize(("scope", "inherited"), [("domains", False), ("domains", True), ("projects", True)],
                         ids=["domain", "domain-inherited", "project-inherited"])
@pytest.mark.parametrize("actor", ["users", "groups"])
def test_domain_and_inherited_role_assignments(conn: openstack.connection.Connection, actor: identityapi.Actor,
                                               scope: identityapi.Target, inherited: bool,
                                               made: list[tuple[identityapi.Collection, str]]) -> None:
    role = identityapi.find_role(conn, "reader")
    assert role is not None
    who = identityapi.create_object(conn, actor, {"name": unique(actor[:-1]), "domain_id": "default"})
    made.append((actor, who["id"]))
    target_id = "default"
    if scope == "projects":
        project = identityapi.create_object(conn, "projects", {"name": unique("project"), "domain_id": "default"})
        made.append(("projects", project["id"]))
        target_id = project["id"]
    ids = {"target": scope, "target_id": target_id, "actor": actor, "actor_id": who["id"], "role_id": role,
           "inherited": inherited}
    assert identityapi.has_grant(conn, **ids) is False
    identityapi.grant(conn, **ids)
    identityapi.grant(conn, **ids)  # idempotent
    assert identityapi.has_grant(conn, **ids) is True
    # the inherited grant and the direct one are two assignments: holding one is not holding the other
    assert identityapi.has_grant(conn, **{**ids, "inherited": not inherited}) is False
    assert identityapi.revoke(conn, **ids) is True
    assert identityapi.revoke(conn, **ids) is False
    assert identityapi.has_grant(conn, **ids) is False
    with pytest.raises(PermanentSiteError) as no_role:
        identityapi.grant(conn, **{**ids, "role_id": "no-such-role"})
    assert no_role.value.status == 404 and "Could not find role: no-such-role." in no_role.value.message
    with pytest.raises(PermanentSiteError) as no_target:
        identityapi.grant(conn, **{**ids, "target_id": "no-such-target"})
    assert no_target.value.status == 404
    assert f"Could not find {scope[:-1]}: no-such-target." in no_target.value.message
    if not inherited:  # a direct grant checks the user or group
        with pytest.raises(PermanentSiteError) as no_actor:
            identityapi.grant(conn, **{**ids, "actor_id": "no-such-actor"})
        assert no_actor.value.status == 404
        assert f"Could not find {actor[:-1]}: no-such-actor." in no_actor.value.message


@pytest.mark.covers("identityapi.grant", "identityapi.has_grant")
def test_inherited_grant_to_a_missing_actor_is_accepted(conn: openstack.connection.Connection) -> None:
    """Keystone accepts an inherited grant to a user that does not exist (so the kind looks the user
    up first); pinned so the simulator answers the same."""
    role = identityapi.find_role(conn, "reader")
    assert role is not None
    ids = {"target": "domains", "target_id": "default", "actor": "users", "actor_id": unique("ghost"),
           "role_id": role, "inherited": True}
    try:
        identityapi.grant(conn, **ids)
        assert identityapi.has_grant(conn, **ids) is True
    finally:
        quiet(identityapi.revoke, conn, **ids)
    assert identityapi.has_grant(conn, **ids) is False


@pytest.mark.covers("identityapi.create_role", "identityapi.find_role")
def test_create_role(conn: openstack.connection.Connection) -> None:
    name = unique("role")
    role = identityapi.create_role(conn, name, "contract")
    try:
        assert identityapi.find_role(conn, name) == role
        with pytest.raises(TemporarySiteError) as dup:  # 409: the next attempt finds it
            identityapi.create_role(conn, name, "contract")
        assert dup.value.status == 409 and f"Duplicate entry found with name {name}" in dup.value.message
        with pytest.raises(PermanentSiteError) as empty:
            identityapi.create_role(conn, "", "contract")
        assert empty.value.status == 400
    finally:
        quiet(_delete_role, conn, role)
    assert identityapi.find_role(conn, name) is None


def _delete_role(conn: openstack.connection.Connection, role_id: str) -> None:
    conn.identity.delete(f"/roles/{role_id}")


@pytest.mark.covers("identityapi.find_domain", "identityapi.own_domain_ids", "identityapi.create_object",
                    "identityapi.update_object", "identityapi.delete_object")
def test_domain_lifecycle_disable_before_delete(conn: openstack.connection.Connection) -> None:
    assert "default" in identityapi.own_domain_ids(conn)  # the site credential lives in Default
    name = unique("domain")
    assert identityapi.find_domain(conn, name) is None
    domain = identityapi.create_object(conn, "domains", {"name": name, "description": "contract", "enabled": True})
    try:
        assert (domain["name"], domain["description"], domain["enabled"]) == (name, "contract", True)
        found = identityapi.find_domain(conn, name)
        assert found is not None and found["id"] == domain["id"]
        assert identityapi.find_domain(conn, name.upper()) is None  # names are exact
        assert identityapi.domain_id(conn, name) == domain["id"]
        with pytest.raises(TemporarySiteError) as dup:  # 409: the next attempt finds it
            identityapi.create_object(conn, "domains", {"name": name})
        assert dup.value.status == 409
        project = identityapi.create_object(conn, "projects", {"name": unique("project"), "domain_id": domain["id"]})
        with pytest.raises(PermanentSiteError) as enabled:  # Keystone deletes only a disabled domain
            identityapi.delete_object(conn, "domains", domain["id"])
        assert enabled.value.status == 403 and "disable it first" in enabled.value.message
        changed = identityapi.update_object(conn, "domains", domain["id"], {"enabled": False, "description": "x"})
        assert (changed["enabled"], changed["description"]) == (False, "x")
        assert identityapi.delete_object(conn, "domains", domain["id"]) is True
        assert identityapi.delete_object(conn, "domains", domain["id"]) is False
        assert identityapi.find_named(conn, "projects", project["name"], domain["id"]) is None  # gone with it
    finally:
        if identityapi.find_domain(conn, name) is not None:
            quiet(identityapi.update_object, conn, "domains", domain["id"], {"enabled": False})
            quiet(identityapi.delete_object, conn, "domains", domain["id"])


def _drop_domain(conn: openstack.connection.Connection, domain_id: str) -> None:
    quiet(identityapi.update_object, conn, "domains", domain_id, {"enabled": False})
    quiet(identityapi.delete_object, conn, "domains", domain_id)


@pytest.mark.covers("identityapi.grant", "identityapi.has_grant", "identityapi.revoke")
@pytest.mark.parametrize(("scope", "inherited"), [("projects", False), ("domains", False), ("domains", True)],
                         ids=["project", "domain", "domain-inherited"])
@pytest.mark.parametrize("actor", ["users", "groups"])
def test_cross_domain_role_assignments(conn: openstack.connection.Connection, actor: identityapi.Actor,
                                       scope: identityapi.Target, inherited: bool) -> None:
    """A user or group of one domain holds a role on another domain, or on a project of it: Keystone
    takes the ids from different domains as they are (no domain of the actor is checked)."""
    role = identityapi.find_role(conn, "reader")
    assert role is not None
    home = identityapi.create_object(conn, "domains", {"name": unique("home"), "enabled": True})
    other = identityapi.create_object(conn, "domains", {"name": unique("other"), "enabled": True})
    try:
        who = identityapi.create_object(conn, actor, {"name": unique(actor[:-1]), "domain_id": home["id"]})
        target_id = other["id"]
        if scope == "projects":
            target_id = identityapi.create_object(conn, "projects", {"name": unique("project"),
                                                                     "domain_id": other["id"]})["id"]
        ids = {"target": scope, "target_id": target_id, "actor": actor, "actor_id": who["id"], "role_id": role,
               "inherited": inherited}
        assert identityapi.has_grant(conn, **ids) is False
        identityapi.grant(conn, **ids)
        assert identityapi.has_grant(conn, **ids) is True
        assert identityapi.has_grant(conn, **{**ids, "inherited": not inherited}) is False
        assert identityapi.revoke(conn, **ids) is True
        assert identityapi.has_grant(conn, **ids) is False
    finally:
        _drop_domain(conn, other["id"])
        _drop_domain(conn, home["id"])
    assert identityapi.find_domain(conn, home["name"]) is None and identityapi.find_domain(conn, other["name"]) is None
