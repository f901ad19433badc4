"""Contract: keystone as Skyfleet uses it - catalog, token validation, independent sites."""

from __future__ import annotations

from datetime import UTC, datetime

import keystoneauth1.exceptions
import openstack.exceptions
import pytest
from contract_support import Site, connect, tenant

pytestmark = pytest.mark.contract

#: Service types Skyfleet looks up in every site's catalog.
REQUIRED_TYPES = {"identity", "compute", "image", "network", "placement"}
#: Block storage may be catalogued under either name; openstacksdk accepts both.
BLOCK_STORAGE_TYPES = {"block-storage", "volumev3"}
SITE_INDEXES = [0, 1]


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("index", SITE_INDEXES)
def test_catalog_has_services_and_endpoints_per_region(sites: list[Site], index: int) -> None:
    site = sites[index]
    conn = site.admin
    access = conn.session.auth.get_access(conn.session)
    catalog = access.service_catalog.catalog
    assert isinstance(catalog, list) and catalog
    by_type = {entry["type"]: entry for entry in catalog}
    assert set(by_type) >= REQUIRED_TYPES, sorted(by_type)
    assert set(by_type) & BLOCK_STORAGE_TYPES, sorted(by_type)
    for stype in REQUIRED_TYPES | (set(by_type) & BLOCK_STORAGE_TYPES):
        entry = by_type[stype]
        assert isinstance(entry["id"], str) and entry["name"]
        endpoints = entry["endpoints"]
        interfaces = {e["interface"] for e in endpoints if e["region_id"] == site.region}
        assert "public" in interfaces, (stype, endpoints)
        for ep in endpoints:
            assert {"id", "interface", "region_id", "region", "url"} <= set(ep), ep
            assert ep["region"] == ep["region_id"]
            assert ep["url"].startswith(("http://", "https://"))
    # The admin API agrees with the token's catalog: the region exists and holds endpoints.
    assert site.region in {r.id for r in conn.identity.regions()}
    public = list(conn.identity.endpoints(interface="public", region_id=site.region))
    services = {s.id: s.type for s in conn.identity.services()}
    assert {services[e.service_id] for e in public} >= REQUIRED_TYPES
    # openstacksdk resolves each service to this region's public endpoint.
    assert conn.compute.get_endpoint().startswith(("http://", "https://"))


@pytest.mark.parametrize("index", SITE_INDEXES)
def test_token_validation_get_v3_auth_tokens(sites: list[Site], index: int) -> None:
    site = sites[index]
    admin = site.admin
    with tenant(site) as t:
        user_token = t.conn.auth_token
        resp = admin.identity.get("/auth/tokens", headers={"X-Subject-Token": user_token}, raise_exc=False)
        assert resp.status_code == 200, resp.text
        assert resp.headers["X-Subject-Token"] == user_token
        token = resp.json()["token"]
        assert {"methods", "user", "project", "roles", "expires_at", "issued_at", "audit_ids", "catalog"} <= set(token)
        assert token["methods"] == ["password"]
        assert token["user"]["id"] == t.user_id
        assert token["user"]["name"] == t.username
        assert token["user"]["domain"]["id"] == "default"
        assert token["project"]["id"] == t.project_id
        assert token["project"]["name"] == t.project_name
        role_names = {r["name"] for r in token["roles"]}
        assert "member" in role_names and "admin" not in role_names
        assert all(isinstance(r["id"], str) for r in token["roles"])
        expires = _parse_ts(token["expires_at"])
        assert expires > datetime.now(UTC)
        assert _parse_ts(token["issued_at"]) < expires
        assert isinstance(token["catalog"], list) and token["catalog"]

        # ?nocatalog leaves the catalog out; HEAD checks without a body.
        resp = admin.identity.get("/auth/tokens?nocatalog", headers={"X-Subject-Token": user_token}, raise_exc=False)
        assert resp.status_code == 200 and "catalog" not in resp.json()["token"]
        resp = admin.identity.head("/auth/tokens", headers={"X-Subject-Token": user_token}, raise_exc=False)
        assert resp.status_code == 200

        # A token that was never issued: 404, with keystone's error body.
        resp = admin.identity.get(
            "/auth/tokens", headers={"X-Subject-Token": "gAAAAABnot-a-real-token"}, raise_exc=False
        )
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == 404

        # A revoked token is no longer valid.
        resp = t.conn.identity.delete("/auth/tokens", headers={"X-Subject-Token": user_token}, raise_exc=False)
        assert resp.status_code == 204
        resp = admin.identity.get("/auth/tokens", headers={"X-Subject-Token": user_token}, raise_exc=False)
        assert resp.status_code == 404


def test_wrong_password_is_401(site: Site) -> None:
    with tenant(site) as t:
        bad = connect(site.cloud_as(t.username, "not-the-password", t.project_name))
        with pytest.raises(keystoneauth1.exceptions.http.Unauthorized) as err:
            bad.identity.get_token()
        assert err.value.http_status == 401


def test_sites_share_nothing(sites: list[Site]) -> None:
    """Two sites are independent clouds: a project or token of one is unknown to the other."""
    first, second = sites[0], sites[1]
    assert first.cloud["auth"]["auth_url"] != second.cloud["auth"]["auth_url"]
    with tenant(first) as t:
        with pytest.raises(openstack.exceptions.NotFoundException):
            second.admin.identity.get_project(t.project_id)
        resp = second.admin.identity.get(
            "/auth/tokens", headers={"X-Subject-Token": t.conn.auth_token}, raise_exc=False
        )
        assert resp.status_code == 404
