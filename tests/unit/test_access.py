"""Who a Keystone token makes of its bearer, the access levels, and the fan-out rate limiter."""

from __future__ import annotations

from typing import Any

import pytest

from skyfleet.api import access
from skyfleet.api.auth import principal_from_token
from skyfleet.api.ratelimit import RateLimiter, TooManyRequests
from skyfleet.errors import Forbidden


def token(project: str | None = "demo", roles: tuple[str, ...] = ("member",), system: bool = False,
          domain: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"user": {"id": "u", "name": "bob", "domain": {"name": "Default"}},
                            "roles": [{"name": r} for r in roles]}
    if project:
        body["project"] = {"id": f"id-{project}", "name": project, "domain": {"name": "Default"}}
    if system:
        body["system"] = {"all": True}
    if domain:  # Keystone's shape of a domain-scoped token
        body["domain"] = {"id": f"id-{domain}", "name": domain}
    return body


def who(body: dict[str, Any]) -> Any:
    return principal_from_token(body, admin_role="admin", admin_project=("admin", "Default"),
                                reader_roles=frozenset({"reader"}))


@pytest.mark.parametrize(("body", "level"), [
    (token(), access.Need.WRITE),
    (token(roles=("reader",)), access.Need.READ),
    (token(roles=("reader", "member")), access.Need.WRITE),
    (token(project=None, roles=()), access.Need.PUBLIC),  # unscoped
    (token(roles=()), access.Need.PUBLIC),  # role-less
    (token(project="admin", roles=("admin",)), access.Need.ADMIN),
    (token(project="demo", roles=("admin",)), access.Need.WRITE),  # a project admin is a tenant, no more
    (token(project=None, roles=("admin",), system=True), access.Need.ADMIN),
    (token(project=None, roles=("member",), system=True), access.Need.PUBLIC),
    (token(project=None, roles=("admin",), domain="acme"), access.Need.PUBLIC),  # a domain admin: no level
    (token(project=None, roles=("reader",), domain="acme"), access.Need.PUBLIC),
])
def test_levels(body: dict[str, Any], level: access.Need) -> None:
    assert access.level(who(body)) == level


def test_admin_project_in_another_domain_is_not_the_admin_project() -> None:
    body = token(project="admin", roles=("admin",))
    body["project"]["domain"]["name"] = "customers"
    assert not who(body).is_admin


def test_decide_checks_the_level_then_the_project_in_the_path() -> None:
    tenant = who(token())
    access.decide(tenant, access.Rule(access.Need.WRITE, own_project=("p",)), {"p": "id-demo"}, "x")
    with pytest.raises(Forbidden, match="not the project of your token"):
        access.decide(tenant, access.Rule(access.Need.READ, own_project=("p",)), {"p": "id-other"}, "x")
    with pytest.raises(Forbidden, match="fleet admins"):
        access.decide(tenant, access.ADMIN, {}, "x")
    with pytest.raises(Forbidden, match="not scoped"):
        access.decide(who(token(project=None, roles=())), access.READ, {}, "x")
    access.decide(who(token(project="admin", roles=("admin",))), access.Rule(access.Need.READ, own_project=("p",)),
                  {"p": "id-other"}, "x")


def test_token_bucket_refuses_past_the_burst_and_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    limiter.spend("a", "x")
    limiter.spend("a", "x")
    with pytest.raises(TooManyRequests) as refused:
        limiter.spend("a", "x")
    assert refused.value.retry_after == 1 and refused.value.status == 429
    limiter.spend("b", "x")  # its own bucket
    now[0] = 1.0
    limiter.spend("a", "x")
    with pytest.raises(TooManyRequests):
        limiter.spend("a", "x")


def test_domain_scoped_tokens() -> None:
    admin = who(token(project=None, roles=("admin",), domain="acme"))
    assert admin.domain_admin and (admin.domain_id, admin.domain_name) == ("id-acme", "acme")
    assert access.identity_scope(admin) == "acme"
    reader = who(token(project=None, roles=("reader",), domain="acme"))
    assert not reader.domain_admin and access.identity_scope(reader) == access.NO_DOMAIN
    assert access.identity_scope(who(token(project="admin", roles=("admin",)))) is None
    assert access.identity_scope(who(token())) == access.NO_DOMAIN  # a tenant: no domain at all


def test_decide_lets_domain_admins_into_domain_rules_only() -> None:
    admin = who(token(project=None, roles=("admin",), domain="acme"))
    access.decide(admin, access.Rule(access.Need.ADMIN, domain=True), {}, "x")
    with pytest.raises(Forbidden, match="domain admin's of domain 'acme'"):
        access.decide(admin, access.ADMIN, {}, "x")
    with pytest.raises(Forbidden, match="reaches only the declared identity"):
        access.decide(admin, access.READ, {}, "x")
    reader = who(token(project=None, roles=("reader",), domain="acme"))
    with pytest.raises(Forbidden, match="without the admin role"):
        access.decide(reader, access.Rule(access.Need.ADMIN, domain=True), {}, "x")


def test_check_identity_keeps_a_domain_admin_in_its_domain() -> None:
    admin = who(token(project=None, roles=("admin",), domain="acme"))
    fleet = who(token(project="admin", roles=("admin",)))
    spec = {"name": "p", "domain": "acme"}
    assert access.check_identity(admin, "project", spec, admin_role="admin") == spec
    assert access.check_identity(admin, "user", {"name": "u", "domain": "id-acme"}, admin_role="admin") == \
        {"name": "u", "domain": "acme"}  # its domain's id reads as its name
    inside = {"user": "u", "user_domain": "id-acme", "project": "p", "project_domain": "acme", "role": "reader",
              "domain": "acme"}
    assert access.check_identity(admin, "role_assignment", inside, admin_role="admin") == \
        {**inside, "user_domain": "acme"}  # its own domain named apart is its own
    for kind, bad, reason in (
            ("project", {"name": "p", "domain": "other"}, "only in its own domain"),
            ("user", {"name": "u"}, "only in its own domain"),  # Default by default
            ("role_assignment", {"user": "u", "role": "admin", "domain": "acme"}, "admin role"),
            ("role_assignment", {"user": "u", "role": "Cloud-Admin", "domain": "acme"}, "admin role"),
            ("role_assignment", {"user": "u", "role": "member", "domain": "acme", "create_missing_roles": True},
             "fleet admins"),
            ("role_assignment", {"user": "u", "user_domain": "other", "role": "reader", "domain": "acme"},
             "user_domain 'other'"),  # a user of another domain on its own domain
            ("role_assignment", {"group": "g", "group_domain": "other", "role": "reader", "domain": "acme"},
             "group_domain 'other'"),
            ("role_assignment", {"user": "u", "project": "p", "project_domain": "other", "role": "reader",
                                 "domain": "acme"}, "project_domain 'other'"),  # its user on another's project
            ("domain", {"name": "acme"}, "fleet admins")):
        with pytest.raises(Forbidden, match=reason):
            access.check_identity(admin, kind, bad, admin_role="cloud-admin")
        if kind != "domain" and bad.get("role") not in ("admin", "Cloud-Admin"):
            assert access.check_identity(fleet, kind, bad, admin_role="admin") == bad
