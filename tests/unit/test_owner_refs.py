"""Whose project or user a sync task acts in: a tenant's own, never the site credential's."""

from __future__ import annotations

from skyfleet.domains.sync.converge import owner_refs

TENANT = {"user_id": "u", "user_name": "bob", "project_id": "p", "project_name": "demo", "real_user": True,
          "is_admin": False, "user_domain_name": "Default", "project_domain_name": "Default"}


def test_a_tenants_resource_names_its_own_user_and_project() -> None:
    assert owner_refs("keypair", TENANT) == {"user": {"id": "u", "name": "bob", "domain_name": "Default"}}
    assert owner_refs("security_group", TENANT) == {"project": {"id": "p", "name": "demo", "domain_name": "Default"}}


def test_a_tenant_without_a_project_never_gets_the_sites_own_scope() -> None:
    lost = {**TENANT, "project_id": None, "project_name": None}
    assert owner_refs("security_group", lost) == {}  # the kind then refuses: no project to act in
    assert "site_scope" not in owner_refs("keypair", TENANT, site_owner=True)


def test_admins_choose_the_sites_own_scope() -> None:
    admin = {**TENANT, "is_admin": True}
    assert owner_refs("keypair", admin, site_owner=True) == {"site_scope": True}
    noauth = {"user_id": "noauth", "project_id": None, "real_user": False}
    assert owner_refs("security_group", noauth) == {"site_scope": True}
    assert owner_refs("flavor", admin) == {}
