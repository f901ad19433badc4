"""The Glance (image v2) and Nova calls the image kinds make: find, create, stream, verify, delete.

Why a module of its own: image data is streamed, never held whole. ``download`` yields the source's
bytes in bounded chunks as Glance sends them and ``upload`` sends an iterator of chunks as one
chunked request body, so memory does not grow with the image. Plain REST through openstacksdk's
image adapter (keystoneauth), like :mod:`syncapi`; every function raises only
:class:`~skyfleet.errors.SiteError` and "absent" is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import requests
from openstack import connection as sdk_connection

from skyfleet.drivers.openstack.errors import from_status, site_call
from skyfleet.drivers.openstack.syncapi import _call, _listing
from skyfleet.errors import PermanentSiteError, TemporarySiteError

Json = dict[str, Any]
CHUNK = 1 << 20  # 1 MiB: what one read from the source and one write to a target carry
PART = 512 * 1024  # the largest HTTP chunk of a chunked upload (uWSGI's default limit is 1 MB)
PATCH = "application/openstack-images-v2.1-json-patch"


def find_images(conn: sdk_connection.Connection, *, name: str, owner: str | None = None) -> list[Json]:
    """Every image of this name the credential sees (of ``owner`` when given), hidden ones included."""
    params: Json = {"name": name}
    if owner:
        params["owner"] = owner
    seen: dict[str, Json] = {}
    for hidden in ("false", "true"):  # glance lists hidden images only when asked, and then only them
        for image in _listing(conn, "image", "/images", "images", {**params, "os_hidden": hidden}):
            seen[str(image["id"])] = image
    return list(seen.values())


def get_image(conn: sdk_connection.Connection, image_id: str) -> Json | None:
    found: Json | None = _call(conn, "image", "GET", f"/images/{image_id}", missing_ok=True)
    return found


def create_image(conn: sdk_connection.Connection, body: Json) -> Json:
    """A new image record (status ``queued``, no data yet)."""
    made: Json = _call(conn, "image", "POST", "/images", body=body)
    return made


def update_image(conn: sdk_connection.Connection, image_id: str, changes: list[Json]) -> Json:
    """Apply JSON-patch operations (``{"op": "replace", "path": "/protected", "value": true}``)."""
    with site_call():
        response = conn.image.request(f"/images/{image_id}", "PATCH", json=changes, raise_exc=False,
                                      headers={"Content-Type": PATCH})
    if response.status_code >= 400:
        raise from_status(response.status_code, response.text[:500])
    body: Json = response.json()
    return body


def delete_image(conn: sdk_connection.Connection, image_id: str) -> bool:
    """Delete an image; False when it was already gone.

    Glance answers 400 ("status transition from deleted to deleted") when another client deletes the
    same image at the same moment; if the image is gone once asked again, that is "already gone" too.
    """
    try:
        return _call(conn, "image", "DELETE", f"/images/{image_id}", missing_ok=True) is not None
    except PermanentSiteError as exc:
        if exc.status != 400:
            raise
        left = get_image(conn, image_id)
        if left is None or left.get("status") in ("deleted", "pending_delete"):
            return False
        raise


def deactivate_image(conn: sdk_connection.Connection, image_id: str) -> None:
    """Make an image's data unreadable (no new boots from it) without deleting it."""
    _call(conn, "image", "POST", f"/images/{image_id}/actions/deactivate")


def add_member(conn: sdk_connection.Connection, image_id: str, project_id: str) -> None:
    """Share an image (visibility ``shared``) with a project; already a member is fine."""
    with site_call():
        response = conn.image.request(f"/images/{image_id}/members", "POST", json={"member": project_id},
                                      raise_exc=False)
    if response.status_code >= 400 and response.status_code != 409:
        raise from_status(response.status_code, response.text[:500])


def members(conn: sdk_connection.Connection, image_id: str) -> list[str]:
    body = _call(conn, "image", "GET", f"/images/{image_id}/members")
    return [str(m["member_id"]) for m in body.get("members") or []]


def download(conn: sdk_connection.Connection, image_id: str, *, chunk: int = CHUNK) -> Iterator[bytes]:
    """The image's bytes, chunk after chunk, as the site sends them; the connection is closed when the
    iterator is exhausted or dropped. A cut-short transfer raises a temporary :class:`SiteError`."""
    with site_call():
        response = conn.image.request(f"/images/{image_id}/file", "GET", raise_exc=False, stream=True)
    try:
        if response.status_code >= 400:
            raise from_status(response.status_code, response.text[:500])
        if response.status_code == 204:
            raise from_status(409, f"image {image_id} has no data")
        try:
            yield from response.iter_content(chunk_size=chunk)
        except requests.RequestException as exc:  # the connection dropped short of the image's end
            raise TemporarySiteError(f"the image download was cut short: {type(exc).__name__}") from exc
    finally:
        response.close()


def upload(conn: sdk_connection.Connection, image_id: str, chunks: Iterable[bytes], *,
           size: int | None = None) -> None:
    """Send ``chunks`` as the image's data in one PUT; Glance makes the image ``active``. With ``size``
    the body goes with a Content-Length: Glance behind uWSGI gives up on a chunked body whose next
    chunk is slow to come, or larger than its chunked-input limit (1 MB by default: ``unable to
    receive chunked part``), so chunked transfer is kept for the sources whose size is unknown, in
    parts of at most ``PART`` bytes."""
    body: Any = SizedBody(chunks, size) if size is not None else bounded(chunks)
    with site_call():
        response = conn.image.request(f"/images/{image_id}/file", "PUT", data=body, raise_exc=False,
                                      headers={"Content-Type": "application/octet-stream"})
    if response.status_code >= 400:
        raise from_status(response.status_code, response.text[:500])


def bounded(chunks: Iterable[bytes], part: int = PART) -> Iterator[bytes]:
    """``chunks`` cut into parts of at most ``part`` bytes (each becomes one HTTP chunk)."""
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), part):
            yield bytes(view[start : start + part])


class SizedBody:
    """A file-like view of an iterator of chunks with a known total length, read without copying more
    than each read returns (the HTTP client reads a few KiB at a time from each 1 MiB chunk)."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._current = memoryview(b"")

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(CHUNK):
            yield block

    def read(self, amount: int = -1) -> bytes:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._current = memoryview(chunk)
        if amount < 0 or amount >= len(self._current):
            out, self._current = bytes(self._current), memoryview(b"")
            return out
        out, self._current = bytes(self._current[:amount]), self._current[amount:]
        return out


def servers_using(conn: sdk_connection.Connection, image_id: str) -> list[str]:
    """Ids of the servers (of every project) booted from the image."""
    body = _call(conn, "compute", "GET", "/servers", params={"image": image_id, "all_tenants": 1, "limit": 50})
    return [str(s["id"]) for s in body.get("servers") or []]
