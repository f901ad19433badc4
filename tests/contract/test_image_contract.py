"""Contract: glance image upload, download and checksums (md5 and sha512 os_hash_value)."""

from __future__ import annotations

import hashlib
import os

import openstack.exceptions
import pytest
from contract_support import Tenant, quiet, tenant, unique

pytestmark = pytest.mark.contract


def test_image_upload_download_checksums(project: Tenant) -> None:
    conn = project.conn
    data = os.urandom(1024 * 1024 + 17)  # not a multiple of any chunk size
    md5 = hashlib.md5(data).hexdigest()
    sha512 = hashlib.sha512(data).hexdigest()
    name = unique("image")
    image = conn.image.create_image(
        name=name,
        data=data,
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        wait=True,
        timeout=120,
    )
    try:
        got = conn.image.get_image(image.id)
        assert got.name == name
        assert got.status == "active"
        assert got.size == len(data)
        assert got.virtual_size == len(data)  # glance inspects the upload; raw: same as size
        assert got.checksum == md5
        assert got.hash_algo == "sha512"
        assert got.hash_value == sha512
        assert (got.disk_format, got.container_format) == ("raw", "bare")
        assert got.owner == project.project_id
        assert got.visibility == "shared"  # glance's default for a new image
        assert isinstance(got.created_at, str) and isinstance(got.updated_at, str)
        assert image.id in {i.id for i in conn.image.images()}

        resp = conn.image.download_image(got)
        assert resp.content == data
        assert resp.headers.get("Content-MD5") == md5

        assert image.id in {i.id for i in conn.image.images(owner=project.project_id)}
        # Another project does not see a non-public image of this one.
        with tenant(project.site) as other:
            with pytest.raises(openstack.exceptions.NotFoundException):
                other.conn.image.get_image(image.id)
            assert image.id not in {i.id for i in other.conn.image.images()}
    finally:
        quiet(conn.image.delete_image, image)
    with pytest.raises(openstack.exceptions.NotFoundException) as gone:
        conn.image.get_image(image.id)
    assert gone.value.status_code == 404


def test_image_without_data_is_queued(project: Tenant) -> None:
    conn = project.conn
    image = conn.image.create_image(
        name=unique("image"), disk_format="raw", container_format="bare", allow_duplicates=True
    )
    try:
        got = conn.image.get_image(image.id)
        assert got.status == "queued"
        assert got.checksum is None and got.hash_value is None and got.size is None
    finally:
        quiet(conn.image.delete_image, image)
