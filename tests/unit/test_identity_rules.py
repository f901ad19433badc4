"""Rules of declared identity that need no database and no site: which sites share a Keystone,
ownership shared by them, the groups a user leaves, a role assignment's name, the password split."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from skyfleet.domains.identity import follow
from skyfleet.domains.identity import service as identity
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.errors import Invalid, PermanentSiteError
from skyfleet.reconcile.kinds import sync_role


def test_sites_share_a_keystone_when_their_identity_endpoints_match() -> None:
    assert follow.keystone_of({"auth_url": "http://k:5000/v3/"}) == follow.keystone_of({"auth_url": "http://k:5000"})
    assert follow.keystone_of({"auth_url": "http://k:5000/v3"}) != follow.keystone_of({"auth_url": "http://j:5000/v3"})
    assert follow.keystone_of({}) == ""


def _binding(site: str, remote: str | None, owned: bool) -> SyncBinding:
    return SyncBinding(resource_id="r", site_id=site, site_name=site, remote_id=remote, owned=owned, status="in-sync",
                       action="ensure", generation=1, updated_at=datetime.now(UTC))


def test_a_region_that_found_its_twins_object_owns_it_too() -> None:
    bindings = {"a": _binding("a", "p1", True), "b": _binding("b", "p1", False), "c": _binding("c", "p1", False),
                "d": _binding("d", "p2", False)}
    keystone = {"a": "http://k1", "b": "http://k1", "c": "http://k2", "d": "http://k1"}
    follow._share_ownership(bindings, keystone)
    assert {s: b.owned for s, b in bindings.items()} == {"a": True, "b": True, "c": False, "d": False}


def test_groups_dropped_from_a_users_list_are_left_until_listed_again() -> None:
    user = SyncResource(kind="user", name="u", scope="", spec={"name": "u", "groups": ["a", "b"]}, options={},
                        placement={})
    identity.track_left_groups(user, {"name": "u", "groups": ["b"]})
    assert user.options["leave_groups"] == ["a"]
    user.spec = {"name": "u", "groups": ["b"]}
    identity.track_left_groups(user, {"name": "u", "groups": ["a"]})
    assert user.options["leave_groups"] == ["b"]
    identity.track_left_groups(user, None)  # no spec change: nothing to track
    assert user.options["leave_groups"] == ["b"]


def test_role_assignment_names_and_password_split() -> None:
    assert identity.role_assignment_name({"user": "alice", "project": "acme", "role": "member"}) == \
        "user:alice:acme:member"
    assert identity.role_assignment_name({"group": "ops", "project": "acme", "role": "reader", "domain": "Eng"}) == \
        "group:ops:acme:reader@Eng"
    with pytest.raises(Invalid):
        identity.role_assignment_name({"user": "a", "group": "b", "project": "p", "role": "r"})
    assert identity.role_assignment_name({"user": "alice", "role": "reader", "domain": "Eng"}) == \
        "user:alice:domain:Eng:reader"
    assert identity.role_assignment_name({"group": "ops", "project": "acme", "role": "reader",
                                          "inherited": True}) == "inherited:group:ops:acme:reader"
    rest, password = identity.split_password("user", {"name": "alice", "password": "s3cret"})
    assert rest == {"name": "alice"} and password == "s3cret"
    assert identity.split_password("user", {"name": "bob"})[1] is identity.UNSET
    assert identity.split_password("user", {"name": "bob", "password": None})[1] is None
    with pytest.raises(Invalid):
        identity.split_password("project", {"name": "acme", "password": "x"})


def test_a_password_is_masked_in_logs_only_while_a_task_holds_it() -> None:
    from typing import Any

    from skyfleet.logs import SECRETS, redact
    from skyfleet.reconcile.kinds import SiteContext
    from skyfleet.reconcile.kinds.sync_identity import UserSync, opened_password

    def ctx_for(password: str) -> Any:
        return SiteContext(site_id="s", site_name="s", auth={}, timeout=1, pool=None,  # type: ignore[arg-type]
                           reveal=lambda _box: {"password": password})

    payload = UserSync(name="alice", password_box="sealed")
    with opened_password(ctx_for("Held-Only-Now-1"), payload) as password:
        assert password == "Held-Only-Now-1" and "Held-Only-Now-1" not in redact("pw Held-Only-Now-1")
    assert "Held-Only-Now-1" not in SECRETS
    SECRETS.add("Site-Secret-Too-1")
    with opened_password(ctx_for("Site-Secret-Too-1"), payload):
        pass
    assert "Site-Secret-Too-1" in SECRETS  # masked before for another reason: still masked
    with opened_password(ctx_for("x"), UserSync(name="bob")) as none:
        assert none is None  # no password declared: nothing opened


def test_cross_domain_assignment_names_one_grant_however_spelt() -> None:
    name = identity.role_assignment_name
    direct = "user:alice:in:A:lab:reader@B"
    assert name({"user": "alice", "user_domain": "A", "project": "lab", "domain": "B", "role": "reader"}) == direct
    assert name({"user": "alice", "domain": "A", "project": "lab", "project_domain": "B", "role": "reader"}) == direct
    assert name({"user": "alice", "user_domain": "A", "project": "lab", "project_domain": "B",
                 "role": "reader"}) == direct
    assert name({"user": "alice", "user_domain": "A", "project": "lab", "role": "reader"}) == \
        "user:alice:in:A:lab:reader"  # the project in Default
    assert name({"group": "ops", "group_domain": "A", "domain": "B", "role": "member", "inherited": True}) == \
        "inherited:group:ops:in:A:domain:B:member"
    # the actor's domain equal to the target's is the old, single-domain name
    assert name({"user": "alice", "user_domain": "B", "project": "lab", "domain": "B", "role": "reader"}) == \
        "user:alice:lab:reader@B"
    assert name({"user": "alice", "project": "lab", "project_domain": "Default", "role": "reader"}) == \
        "user:alice:lab:reader"
    for bad, field in (({"user": "a", "group_domain": "A", "role": "r"}, "group_domain"),
                       ({"group": "g", "user_domain": "A", "role": "r"}, "user_domain"),
                       ({"user": "a", "project_domain": "B", "role": "r"}, "project_domain")):
        with pytest.raises(Invalid, match=field):
            name(bad)
    assignment = SyncResource(kind="role_assignment", name=direct, scope="", options={}, placement={},
                              spec={"user": "alice", "user_domain": "A", "project": "lab", "domain": "B",
                                    "role": "reader"})
    assert identity.domains_of(assignment) == {"A", "B"}


def test_memberships_a_region_added_are_skyfleets_on_its_twin_and_carried_to_each_site() -> None:
    bindings = {"a": _binding("a", "u1", True), "b": _binding("b", "u1", False), "c": _binding("c", "u2", False)}
    bindings["a"].memberships = {"blue": "added", "legacy": "adopted"}
    bindings["b"].memberships = {"blue": "adopted", "legacy": "adopted"}
    bindings["c"].memberships = {"blue": "adopted", "legacy": "kept"}
    follow._share_memberships(bindings, {"a": "http://k1", "b": "http://k1", "c": "http://k2"})
    assert bindings["b"].memberships == {"blue": "added", "legacy": "adopted"}
    assert bindings["c"].memberships == {"blue": "adopted", "legacy": "kept"}  # another Keystone
    user = SyncResource(kind="user", name="u", scope="", spec={}, options={}, placement={})
    assert follow.site_fields(user, bindings) == {"a": {"added_groups": ["blue"]}, "b": {"added_groups": ["blue"]}}
    group = SyncResource(kind="group", name="g", scope="", spec={}, options={}, placement={})
    assert follow.site_fields(group, bindings) == {}
    # provisioned before the record was kept: an owned user's listed groups are Skyfleet's, an adopted one's not
    older = {"a": _binding("a", "u1", True), "b": _binding("b", "u2", False), "c": _binding("c", None, True)}
    user = SyncResource(kind="user", name="u", scope="", spec={"groups": ["blue"]}, options={"leave_groups": ["red"]},
                        placement={})
    assert follow.site_fields(user, older) == {"a": {"added_groups": ["blue", "red"]}}


def test_groups_a_task_joins_are_its_intent_so_a_retry_knows_them_as_skyfleets() -> None:
    from skyfleet.reconcile.kinds import SiteContext
    from skyfleet.reconcile.kinds import sync_identity as kind

    p = kind.UserSync(name="erin", groups=["blue", "green"], added_groups=["blue"])
    assert kind.intent(kind.diff(p, {"found": None})) == {"create": True, "join": ["blue", "green"]}
    seen = {"found": {"id": "u1"}, "collection": "users", "owned": False, "differs": [], "join": ["g-green"],
            "join_names": ["green"], "leave": [], "memberships": {"blue": "added", "green": "added"}}
    plan = kind.diff(p, seen)
    assert plan is not None and kind.intent(plan) == {"join": ["green"]}
    retry = SiteContext(site_id="s", site_name="s", auth={}, timeout=1, pool=None,  # type: ignore[arg-type]
                        prior_intent={"join": ["green"]})
    assert kind._ours(retry, p) == {"blue", "green"}
    assert not retry.created_before  # joining groups is not creating the user


@pytest.mark.parametrize("role", ["admin", "Admin", "ADMIN", " admin", "admin "])
def test_the_admin_role_is_never_granted_whatever_its_case(role: str) -> None:
    """Policies compare role names without case: ``Admin`` is the admin role too. Refused at the API
    (400) and again by the task, before it asks the site anything."""
    spec = {"user": "alice", "project": "acme", "role": role, "domain": "acme"}
    with pytest.raises(Invalid, match="admin roles are protected"):
        identity.check_protected(None, kind="role_assignment", spec=spec, placement={"sites": []})  # type: ignore[arg-type]

    class NoSite:
        site_name = "edge-1"

        def connection(self) -> None:
            raise AssertionError("the site is not asked")

    if role.startswith(" "):
        return  # a payload never starts with a space (the name pattern)
    payload = sync_role.RoleAssignmentSync.model_validate({**spec, "name": "n", "create_missing_roles": True})
    with pytest.raises(PermanentSiteError, match="never grants or creates"):
        sync_role.observe(NoSite(), payload)  # type: ignore[arg-type]
