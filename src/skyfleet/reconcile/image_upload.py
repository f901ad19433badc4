"""An image's bytes streamed through Skyfleet (``PUT /v1/images/{ref}/file``) into its seed site.

Why it exists: a user with an image on disk and no site holding it yet uploads it once to Skyfleet;
the bytes go straight on to the site the declaration names (the seed), in the owner's mapped project,
and never sit whole in memory or on disk here: the request body is read chunk by chunk by the event
loop and handed through a small bounded queue to a worker thread that streams them into Glance. The
seed copy is verified against the hashes of the bytes that passed (an upload that does not verify
is deleted); from then on the seed image is the declared image's source, copied to the other sites
by the engine like any other.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio

from skyfleet.drivers.openstack import imageapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import TemporarySiteError
from skyfleet.reconcile.kinds import SiteContext
from skyfleet.reconcile.kinds.sync_common import site_project
from skyfleet.reconcile.kinds.sync_image import ImageSync, Meter, copy_body, discard, same_data

DEPTH = 16  # chunks in flight between the request and the site (each at most a few hundred KiB)
STALL = 60.0  # seconds a side may wait on the other before the upload is abandoned


@dataclass(frozen=True)
class Seed:
    """Where the bytes go: the seed site (with its decrypted credentials) and the image's payload."""

    site_id: str
    site_name: str
    auth: dict[str, Any]
    payload: ImageSync
    size: int | None  # the request's Content-Length, when it gave one


class _Pipe:
    """A bounded hand-over of chunks from the event loop to one worker thread; either side gives up
    when the other has failed (``failed``: the site side; ``aborted``: the request side) or stalls."""

    END = b""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes] = queue.Queue(maxsize=DEPTH)
        self.failed = threading.Event()
        self.aborted = threading.Event()

    def put(self, chunk: bytes) -> None:
        waited = 0.0
        while not self.failed.is_set():
            try:
                self.chunks.put(chunk, timeout=0.5)
                return
            except queue.Full:
                waited += 0.5
                if waited >= STALL:
                    raise TemporarySiteError("the seed site stopped taking the image's bytes") from None

    def abort(self) -> None:
        """The request's body ended short (the client left, or it passed its limit)."""
        self.aborted.set()
        with contextlib.suppress(queue.Full):
            self.chunks.put_nowait(self.END)  # wakes a reader waiting on an empty queue

    def read(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self.chunks.get(timeout=STALL)
            except queue.Empty:
                raise TemporarySiteError("the upload stalled: no bytes came for a minute") from None
            if self.aborted.is_set():
                raise TemporarySiteError("the upload was cut short")
            if chunk == self.END:
                return
            yield chunk


POOL = SitePool()  # the API process's sessions to seed sites (uploads are rare; tokens are reused)


async def upload(seed: Seed, body: AsyncIterator[bytes], *, timeout: float,
                 pool: SitePool = POOL) -> dict[str, Any]:
    """Stream ``body`` into a new image on the seed site; its id, size and hashes once verified. A body
    that ends short raises what ended it (nothing is kept on the site)."""
    pipe = _Pipe()
    outcome: dict[str, Any] = {}
    cut: BaseException | None = None

    def consume() -> None:
        try:
            outcome.update(_store(seed, pipe.read(), pool=pool, timeout=timeout))
        except BaseException as exc:
            outcome["error"] = exc
            pipe.failed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, consume)
        try:
            async for chunk in body:
                if chunk:
                    await anyio.to_thread.run_sync(pipe.put, chunk)
                if pipe.failed.is_set():
                    break
            else:
                await anyio.to_thread.run_sync(pipe.put, _Pipe.END)
        except Exception as exc:  # the client left, or its body passed the limit
            cut = exc
            pipe.abort()
    if cut is not None:
        raise cut
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    return outcome


def _store(seed: Seed, chunks: Iterator[bytes], *, pool: SitePool, timeout: float) -> dict[str, Any]:
    ctx = SiteContext(site_id=seed.site_id, site_name=seed.site_name, auth=seed.auth, timeout=timeout, pool=pool)
    p = seed.payload
    conn = ctx.connection()
    project = site_project(ctx, p.project, site_scope=p.site_scope)
    made = imageapi.create_image(conn, copy_body(p, project, {}))
    meter = Meter(ctx, total=seed.size, hash_it=True)
    try:
        imageapi.upload(conn, made["id"], meter.count(chunks), size=seed.size)
        got = imageapi.get_image(conn, made["id"]) or {}
        want = {**meter.digests(), "size": meter.done}
        if not same_data(got, want):
            raise TemporarySiteError(f"the seed copy in {seed.site_name} did not verify (status "
                                     f"{got.get('status')!r}, size {got.get('size')} of {meter.done}); deleted")
    except BaseException:
        discard(conn, made["id"])
        raise
    return {"image_id": str(made["id"]), **want}

