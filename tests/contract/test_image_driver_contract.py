"""Contract: the image driver (``skyfleet.drivers.openstack.imageapi``) against the sites.

What image sync does, call by call, as the site admin working for a tenant's project: create an
image owned by the project, stream bytes into it as a chunked body, read them back in chunks, find
it by name and owner, share it, protect it (then a delete is refused), deactivate it, and ask Nova
which servers use it. The tenant itself must see the image as its own.
"""

from __future__ import annotations

import hashlib
import os

import openstack.connection
import pytest
from contract_support import Tenant, quiet, unique

from skyfleet.drivers.openstack import imageapi
from skyfleet.errors import PermanentSiteError, SiteError

pytestmark = pytest.mark.contract
DATA = os.urandom(2 * imageapi.CHUNK + 4321)


def _chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.covers("imageapi.create_image", "imageapi.upload", "imageapi.SizedBody.read", "imageapi.download",
                    "imageapi.get_image", "imageapi.find_images", "imageapi.delete_image", "imageapi.servers_using")
def test_an_image_for_a_tenant_streamed_in_and_out(conn: openstack.connection.Connection, project: Tenant) -> None:
    name = unique("img")
    made = imageapi.create_image(conn, {"name": name, "disk_format": "raw", "container_format": "bare",
                                        "visibility": "private", "owner": project.project_id,
                                        "skyfleet_resource": "r-1", "skyfleet_generation": "1"})
    try:
        assert (made["status"], made["owner"]) == ("queued", project.project_id)
        imageapi.upload(conn, made["id"], iter(_chunks(DATA)), size=len(DATA))  # with a Content-Length
        got = imageapi.get_image(conn, made["id"])
        assert got is not None and got["status"] == "active" and got["size"] == len(DATA)
        assert got["checksum"] == hashlib.md5(DATA).hexdigest()
        assert got["os_hash_algo"] == "sha512" and got["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
        assert got["skyfleet_resource"] == "r-1"
        assert b"".join(imageapi.download(conn, made["id"])) == DATA
        assert all(len(c) <= imageapi.CHUNK for c in imageapi.download(conn, made["id"]))
        assert [i["id"] for i in imageapi.find_images(conn, name=name, owner=project.project_id)] == [made["id"]]
        assert imageapi.find_images(conn, name=name, owner="0" * 32) == []
        assert project.conn.image.get_image(made["id"]).owner == project.project_id  # the tenant's own
        assert imageapi.servers_using(conn, made["id"]) == []
    finally:
        assert imageapi.delete_image(conn, made["id"]) is True
    assert imageapi.get_image(conn, made["id"]) is None
    assert imageapi.delete_image(conn, made["id"]) is False  # already gone


@pytest.mark.covers("imageapi.update_image", "imageapi.add_member", "imageapi.members",
                    "imageapi.deactivate_image", "imageapi.bounded")
def test_share_protect_and_deactivate(conn: openstack.connection.Connection, project: Tenant) -> None:
    made = imageapi.create_image(conn, {"name": unique("img"), "disk_format": "raw", "container_format": "bare",
                                        "visibility": "shared", "owner": project.project_id})
    try:
        imageapi.upload(conn, made["id"], [b"x" * 1000, b"y" * (3 << 20)])  # chunked (no size), a part > 1 MB
        member = str(conn.current_project_id)  # another project than the owner: the admin's
        imageapi.add_member(conn, made["id"], member)
        imageapi.add_member(conn, made["id"], member)  # a second time is fine
        assert imageapi.members(conn, made["id"]) == [member]
        imageapi.update_image(conn, made["id"], [{"op": "replace", "path": "/protected", "value": True}])
        with pytest.raises(PermanentSiteError) as refused:
            imageapi.delete_image(conn, made["id"])
        assert refused.value.status == 403
        imageapi.update_image(conn, made["id"], [{"op": "replace", "path": "/protected", "value": False}])
        imageapi.deactivate_image(conn, made["id"])
        assert (imageapi.get_image(conn, made["id"]) or {}).get("status") == "deactivated"
        with pytest.raises(SiteError):
            b"".join(imageapi.download(project.conn, made["id"]))  # the tenant can no longer read it
    finally:
        quiet(imageapi.update_image, conn, made["id"], [{"op": "replace", "path": "/protected", "value": False}])
        quiet(imageapi.delete_image, conn, made["id"])
