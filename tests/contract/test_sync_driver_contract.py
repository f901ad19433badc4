"""Contract: the sync driver (``skyfleet.drivers.openstack.syncapi``) against the sites.

Each test calls the driver functions themselves, as an admin working for another user or project
(what sync does): keypairs of another user (Nova 2.10 ``user_id``), private flavors with extra specs
and an access list, security groups and rules in another project, and the Keystone look-ups that
map a global project or user onto a site (by id, then by name in a domain).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openstack.connection
import pytest
from contract_support import Site, Tenant, quiet, skyfleet_auth, unique

from skyfleet.drivers.openstack import quota, site_http, syncapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import PermanentSiteError, SiteError, TemporarySiteError

pytestmark = pytest.mark.contract


@pytest.mark.covers("syncapi.create_keypair", "syncapi.get_keypair", "syncapi.delete_keypair",
                    "syncapi.current_ids", "pool.SitePool.connection", "pool.SitePool.session")
def test_keypair_of_another_user(site: Site, conn: openstack.connection.Connection, project: Tenant,
                                 ssh_public_key: tuple[str, str]) -> None:
    public_key, fingerprint = ssh_public_key
    user_id, project_id = syncapi.current_ids(conn)
    assert (user_id, project_id) == (site.admin.current_user_id, site.admin.current_project_id)
    name = unique("kp")
    made = syncapi.create_keypair(conn, name=name, public_key=public_key, user_id=project.user_id)
    try:
        assert (made["name"], made["fingerprint"], made["user_id"]) == (name, fingerprint, project.user_id)
        found = syncapi.get_keypair(conn, name, user_id=project.user_id)
        assert found is not None and found["public_key"].split()[:2] == public_key.split()[:2]
        assert found["user_id"] == project.user_id
        assert syncapi.get_keypair(conn, name, user_id=None) is None  # the admin has none by that name
        assert project.conn.compute.get_keypair(name).fingerprint == fingerprint  # the user sees it as theirs
        with pytest.raises(TemporarySiteError) as err:  # 409: the driver's policy is "retry later"
            syncapi.create_keypair(conn, name=name, public_key=public_key, user_id=project.user_id)
        assert err.value.status == 409
        with pytest.raises(PermanentSiteError) as bad:
            syncapi.create_keypair(conn, name=unique("kp"), public_key="ssh-ed25519 not-a-key",
                                   user_id=project.user_id)
        assert bad.value.status == 400
    finally:
        assert syncapi.delete_keypair(conn, name, user_id=project.user_id) is True
    assert syncapi.delete_keypair(conn, name, user_id=project.user_id) is False
    assert syncapi.get_keypair(conn, name, user_id=project.user_id) is None


@pytest.mark.covers("syncapi.create_flavor", "syncapi.find_flavor", "syncapi.set_extra_specs",
                    "syncapi.unset_extra_spec", "syncapi.flavor_access", "syncapi.delete_flavor")
def test_private_flavor_with_extra_specs_and_access_list(conn: openstack.connection.Connection,
                                                        project: Tenant) -> None:
    name = unique("flavor")
    made = syncapi.create_flavor(conn, {"name": name, "ram": 64, "vcpus": 1, "disk": 1,
                                        "os-flavor-access:is_public": False})
    try:
        assert made["name"] == name and made["os-flavor-access:is_public"] is False
        syncapi.set_extra_specs(conn, made["id"], {"hw:cpu_policy": "shared", "skyfleet:drop": "1"})
        syncapi.unset_extra_spec(conn, made["id"], "skyfleet:drop")
        syncapi.unset_extra_spec(conn, made["id"], "skyfleet:never-set")  # absent: no error
        syncapi.flavor_access(conn, made["id"], project.project_id, add=True)
        found = syncapi.find_flavor(conn, name)
        assert found is not None and found["id"] == made["id"]
        assert found["extra_specs"] == {"hw:cpu_policy": "shared"}
        assert found["access"] == [project.project_id]
        assert name in {f.name for f in project.conn.compute.flavors()}  # the project can use it
        with pytest.raises(SiteError) as err:  # the same project twice
            syncapi.flavor_access(conn, made["id"], project.project_id, add=True)
        assert err.value.status == 409
        syncapi.flavor_access(conn, made["id"], project.project_id, add=False)
        found = syncapi.find_flavor(conn, name)
        assert found is not None and found["access"] == []
    finally:
        assert syncapi.delete_flavor(conn, made["id"]) is True
    assert syncapi.delete_flavor(conn, made["id"]) is False
    assert syncapi.find_flavor(conn, name) is None


@pytest.mark.covers("syncapi.create_security_group", "syncapi.find_security_group",
                    "syncapi.update_security_group", "syncapi.create_rule", "syncapi.delete_rule",
                    "syncapi.delete_security_group")
def test_security_group_in_another_project(site: Site, conn: openstack.connection.Connection,
                                           project: Tenant) -> None:
    name = unique("sg")
    group = syncapi.create_security_group(conn, name=name, description="first", project_id=project.project_id)
    try:
        assert group["project_id"] == project.project_id and group["name"] == name
        assert syncapi.find_security_group(conn, name, project.project_id)["id"] == group["id"]  # type: ignore[index]
        assert syncapi.find_security_group(conn, name, site.admin.current_project_id) is None
        syncapi.update_security_group(conn, group["id"], description="second")
        assert project.conn.network.get_security_group(group["id"]).description == "second"
        body = {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"}
        rule = syncapi.create_rule(conn, body)
        assert (rule["security_group_id"], rule["port_range_min"], rule["remote_ip_prefix"]) == \
            (group["id"], 22, "10.0.0.0/8")
        assert rule["project_id"] == site.admin.current_project_id  # the requester's, not the group owner's
        with pytest.raises(SiteError) as err:
            syncapi.create_rule(conn, body)
        assert err.value.status == 409
        syncapi.delete_rule(conn, rule["id"])
        syncapi.delete_rule(conn, rule["id"])  # already gone: no error
        rules = {r.id for r in project.conn.network.security_group_rules(security_group_id=group["id"])}
        assert rule["id"] not in rules
    finally:
        assert syncapi.delete_security_group(conn, group["id"]) is True
    assert syncapi.delete_security_group(conn, group["id"]) is False


@pytest.mark.covers("syncapi.find_identity", "quota.find_project")
def test_find_project_and_user_by_id_then_name(site: Site, conn: openstack.connection.Connection,
                                               pool: SitePool, project: Tenant) -> None:
    unknown = uuid.uuid4().hex
    for collection, ident, name in (("projects", project.project_id, project.project_name),
                                    ("users", project.user_id, project.username)):
        assert syncapi.find_identity(conn, collection, ident=ident, name=None, domain_name=None) == ident
        assert syncapi.find_identity(conn, collection, ident=unknown, name=name, domain_name="Default") == ident
        assert syncapi.find_identity(conn, collection, ident=None, name=name, domain_name=None) == ident
        assert syncapi.find_identity(conn, collection, ident=unknown, name=unique("nobody"),
                                     domain_name="Default") is None
        assert syncapi.find_identity(conn, collection, ident=None, name=name,
                                     domain_name=unique("no-domain")) is None
    auth = skyfleet_auth(site)
    session = pool.session(auth, timeout=60)
    assert quota.find_project(session, auth_url=auth["auth_url"], name=project.project_name,
                              domain_name="Default") == project.project_id
    assert quota.find_project(session, auth_url=auth["auth_url"], name=unique("nothing"),
                              domain_name="Default") is None
    assert quota.find_project(session, auth_url=auth["auth_url"], name=project.project_name,
                              domain_name=unique("no-domain")) is None


@pytest.fixture
def member_conn(site: Site, pool: SitePool, project: Tenant) -> Iterator[openstack.connection.Connection]:
    yield pool.connection(skyfleet_auth(site, site.cloud_as(project.username, project.password,
                                                            project.project_name)), timeout=60)


def test_member_may_not_create_a_flavor(member_conn: openstack.connection.Connection) -> None:
    with pytest.raises(PermanentSiteError) as err:
        made = syncapi.create_flavor(member_conn, {"name": unique("flavor"), "ram": 64, "vcpus": 1, "disk": 1})
        quiet(syncapi.delete_flavor, member_conn, made["id"])
    assert err.value.status == 403


@pytest.mark.covers("syncapi.list_keypairs", "syncapi.list_flavors", "syncapi.list_security_groups")
def test_listings_the_drift_audit_compares(conn: openstack.connection.Connection, project: Tenant,
                                          ssh_public_key: tuple[str, str]) -> None:
    """One listing per kind shows what the drift audit compares: another user's keypairs with their public
    keys, every flavor (a private one too) with its extra specs, a project's groups with their rules."""
    public_key, _ = ssh_public_key
    name = unique("kp")
    syncapi.create_keypair(conn, name=name, public_key=public_key, user_id=project.user_id)
    flavor = syncapi.create_flavor(conn, {"name": unique("flavor"), "ram": 64, "vcpus": 1, "disk": 1,
                                          "os-flavor-access:is_public": False})
    group = syncapi.create_security_group(conn, name=unique("sg"), description="d", project_id=project.project_id)
    try:
        keys = syncapi.list_keypairs(conn, user_id=project.user_id)
        assert keys[name]["public_key"].split()[:2] == public_key.split()[:2]
        assert name not in syncapi.list_keypairs(conn, user_id=None)  # the admin's own: not the user's
        syncapi.set_extra_specs(conn, flavor["id"], {"hw:cpu_policy": "shared"})
        flavors = syncapi.list_flavors(conn)
        assert flavors[flavor["id"]]["name"] == flavor["name"]
        assert flavors[flavor["id"]]["extra_specs"] == {"hw:cpu_policy": "shared"}  # compute 2.61
        assert flavors[flavor["id"]]["os-flavor-access:is_public"] is False
        body = {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"}
        rule = syncapi.create_rule(conn, body)
        groups = syncapi.list_security_groups(conn, project.project_id)
        assert {r["id"] for r in groups[group["id"]]["security_group_rules"]} >= {rule["id"]}
        assert all(g["project_id"] == project.project_id for g in groups.values())
        syncapi.delete_keypair(conn, name, user_id=project.user_id)
        assert name not in syncapi.list_keypairs(conn, user_id=project.user_id)
    finally:
        syncapi.delete_keypair(conn, name, user_id=project.user_id)
        syncapi.delete_flavor(conn, flavor["id"])
        syncapi.delete_security_group(conn, group["id"])


@pytest.mark.covers("site_http.supported", "site_http.endpoint", "site_http.request", "site_http.decoded",
                    "audit_http.AuditHttp.send")
def test_calls_on_the_shared_loop_keep_keystoneauths_view(conn: openstack.connection.Connection,
                                                          project: Tenant) -> None:
    """The sync calls go out on the aiohttp loop with keystoneauth's token and endpoints: the endpoints
    are the ones keystoneauth's adapters join paths to (Nova's catalog URL, Neutron's and Keystone's
    after version discovery), the token is the session's, and a microversion reaches Nova."""
    assert site_http.supported(conn)
    compute = site_http.endpoint(conn, "compute")
    assert compute == conn.session.get_endpoint(service_type="compute", interface="public",
                                                region_name=conn.config.region_name).rstrip("/")
    assert site_http.endpoint(conn, "network").rstrip("/").endswith("v2.0")
    assert site_http.endpoint(conn, "identity").rstrip("/").endswith("v3")
    status, raw = site_http.request(conn, "compute", "GET", "/os-keypairs", params={"user_id": project.user_id},
                                    microversion="2.10")
    assert status == 200 and site_http.decoded(status, raw, missing_ok=False)["keypairs"] == []
    status, raw = site_http.request(conn, "compute", "GET", "/os-keypairs/no-such-key", microversion="2.10")
    assert status == 404 and site_http.decoded(status, raw, missing_ok=True) is None
    with pytest.raises(PermanentSiteError):
        site_http.decoded(status, raw, missing_ok=False)
    status, raw = site_http.request(conn, "identity", "GET", f"/projects/{project.project_id}")
    assert status == 200 and site_http.decoded(status, raw, missing_ok=False)["project"]["id"] == project.project_id
