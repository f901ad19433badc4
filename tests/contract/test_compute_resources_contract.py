"""Contract: nova keypairs and flavors (extra specs, project access) as Skyfleet manages them."""

from __future__ import annotations

import re

import openstack.exceptions
import pytest
from contract_support import Site, Tenant, quiet, tenant, unique

pytestmark = pytest.mark.contract

FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")


def test_keypair_import_get_list_delete(project: Tenant, ssh_public_key: tuple[str, str]) -> None:
    conn = project.conn
    public_key, fingerprint = ssh_public_key
    name = unique("key")
    kp = conn.compute.create_keypair(name=name, public_key=public_key)
    try:
        assert kp.name == name
        assert kp.public_key == public_key
        assert kp.fingerprint == fingerprint and FINGERPRINT.match(kp.fingerprint)
        assert kp.type == "ssh"
        assert kp.private_key is None  # imported, so nova keeps no private half

        got = conn.compute.get_keypair(name)
        assert (got.name, got.fingerprint, got.public_key, got.type) == (name, fingerprint, public_key, "ssh")
        assert got.user_id == project.user_id
        assert isinstance(got.created_at, str)
        listed = {k.name: k for k in conn.compute.keypairs()}
        assert name in listed and listed[name].fingerprint == fingerprint

        with pytest.raises(openstack.exceptions.ConflictException) as err:
            conn.compute.create_keypair(name=name, public_key=public_key)
        assert err.value.status_code == 409

        with pytest.raises(openstack.exceptions.BadRequestException) as bad:
            conn.compute.create_keypair(name=unique("key"), public_key="ssh-ed25519 not-base64!")
        assert bad.value.status_code == 400
    finally:
        quiet(conn.compute.delete_keypair, name)
    with pytest.raises(openstack.exceptions.NotFoundException) as gone:
        conn.compute.get_keypair(name)
    assert gone.value.status_code == 404
    # Keypairs are per user: another user of another project does not see it.
    assert name not in {k.name for k in conn.compute.keypairs()}


def test_flavor_extra_specs_and_project_access(site: Site, project: Tenant) -> None:
    admin = site.admin
    name = unique("flavor")
    flavor = admin.compute.create_flavor(name=name, ram=128, vcpus=2, disk=1, is_public=False)
    try:
        assert flavor.name == name
        assert (flavor.ram, flavor.vcpus, flavor.disk) == (128, 2, 1)
        assert flavor.is_public is False
        assert isinstance(flavor.id, str) and flavor.id

        specs = {"hw:cpu_policy": "shared", "skyfleet:tier": "gold"}
        created = admin.compute.create_flavor_extra_specs(flavor, specs)
        assert created.extra_specs == specs
        assert admin.compute.fetch_flavor_extra_specs(flavor).extra_specs == specs
        assert admin.compute.get_flavor(flavor.id, get_extra_specs=True).extra_specs == specs
        assert admin.compute.get_flavor_extra_specs_property(flavor, "skyfleet:tier") == "gold"
        admin.compute.update_flavor_extra_specs_property(flavor, "skyfleet:tier", "silver")
        admin.compute.delete_flavor_extra_specs_property(flavor, "hw:cpu_policy")
        assert admin.compute.fetch_flavor_extra_specs(flavor).extra_specs == {"skyfleet:tier": "silver"}

        # From microversion 2.86 nova validates extra specs: a known key with a bad value
        # is refused; before 2.86 (what openstacksdk sends here) it is stored as is.
        bad = admin.compute.post(
            f"/flavors/{flavor.id}/os-extra_specs",
            json={"extra_specs": {"hw:cpu_policy": "no-such-policy"}},
            microversion="2.86",
            raise_exc=False,
        )
        assert bad.status_code == 400, bad.text
        assert bad.json()["badRequest"]["code"] == 400
        assert admin.compute.fetch_flavor_extra_specs(flavor).extra_specs == {"skyfleet:tier": "silver"}

        # Private flavor: invisible to a project until it is given access.
        with pytest.raises(openstack.exceptions.NotFoundException):
            project.conn.compute.get_flavor(flavor.id)
        admin.compute.flavor_add_tenant_access(flavor, project.project_id)
        access = admin.compute.get_flavor_access(flavor)
        assert access == [{"flavor_id": flavor.id, "tenant_id": project.project_id}]
        assert project.conn.compute.get_flavor(flavor.id).name == name
        assert flavor.id in {f.id for f in project.conn.compute.flavors()}
        with tenant(site) as other:
            with pytest.raises(openstack.exceptions.NotFoundException):
                other.conn.compute.get_flavor(flavor.id)
            assert flavor.id not in {f.id for f in other.conn.compute.flavors()}
        with pytest.raises(openstack.exceptions.ConflictException) as dup:
            admin.compute.flavor_add_tenant_access(flavor, project.project_id)
        assert dup.value.status_code == 409
        admin.compute.flavor_remove_tenant_access(flavor, project.project_id)
        assert admin.compute.get_flavor_access(flavor) == []

        with pytest.raises(openstack.exceptions.ConflictException) as same_name:
            admin.compute.create_flavor(name=name, ram=64, vcpus=1, disk=1)
        assert same_name.value.status_code == 409
        # Only admins may create flavors.
        with pytest.raises(openstack.exceptions.ForbiddenException) as forbidden:
            project.conn.compute.create_flavor(name=unique("flavor"), ram=64, vcpus=1, disk=1)
        assert forbidden.value.status_code == 403
    finally:
        quiet(admin.compute.delete_flavor, flavor)
    with pytest.raises(openstack.exceptions.NotFoundException):
        admin.compute.get_flavor(flavor.id)
