"""``sync.image``: converge one declared image in one site: copy it there, verified, or delete the copy.

The rule. The copy lives in the owner's mapped project on the site (a tenant's image is never put in
the site's admin project) and carries two properties, ``skyfleet_resource`` (the declared image's
id) and ``skyfleet_generation`` (its version): that mark is what makes a copy Skyfleet's own. An
image of the same name in the project whose data equals the source's (same ``os_hash_value``, or
md5 ``checksum`` where the site has no multihash) is adopted, not copied. A copy is streamed from
the source (an image on another site, read with that site's credentials, or an allowed URL) to the
target in bounded chunks, under the per-site bandwidth caps, reporting bytes done; it is done only
when the target says ``active`` with the source's size and checksums. Anything else deletes the new
copy before the error is raised, so nothing half-uploaded stays. Once a site holds the new version,
the older versions Skyfleet made there are deleted, unless servers still use them. A different
image of the same name that Skyfleet did not make is left alone, and the copy is refused without
``force``. Deleting removes Skyfleet's copies only (``purge``: any image of the name in the
project); a protected image or one that servers use is refused with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from skyfleet.domains.text import Name
from skyfleet.drivers import web
from skyfleet.drivers.openstack import imageapi, syncapi
from skyfleet.errors import PermanentSiteError, SiteError, TemporarySiteError
from skyfleet.reconcile import bandwidth
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import IdentityRef, SyncPayload, resolve, site_project, verdict

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "aki", "ari", "ami", "ova", "docker", "compressed")
MARK, VERSION = "skyfleet_resource", "skyfleet_generation"
#: Image fields Glance owns or that Skyfleet sets itself: never user properties.
RESERVED = frozenset({"id", "name", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
                      "created_at", "updated_at", "owner", "self", "file", "schema", "direct_url", "locations",
                      "stores", "visibility", "protected", "os_hidden", "tags", "min_ram", "min_disk",
                      "disk_format", "container_format", "members", MARK, VERSION})
INHERITED = ("disk_format", "container_format", "min_disk", "min_ram")  # the source's, unless declared
REPORT_EVERY = 1.0  # seconds between two progress reports of one copy
MAX_INT = 2**31 - 1


class ImageSource(BaseModel):
    """Where the bytes come from: an image on a registered site, or an http(s) URL."""

    model_config = ConfigDict(extra="forbid")

    site_id: Name | None = Field(None, max_length=64)
    site_name: Name | None = Field(None, max_length=64)
    image_id: Name | None = Field(None, max_length=64)
    url: Name | None = Field(None, max_length=2000)
    upload: bool = False  # the bytes come through Skyfleet into the site (image_id once they arrived)
    # What the bytes must hash to (known for a site source once read; optional for a URL).
    checksum: str | None = Field(None, pattern="^[0-9a-f]{32}$")
    os_hash_algo: str | None = Field(None, pattern="^(sha256|sha384|sha512)$")
    os_hash_value: str | None = Field(None, pattern="^[0-9a-f]{64,128}$")

    @model_validator(mode="after")
    def _one(self) -> ImageSource:
        if (self.url is None) == (self.site_id is None):
            raise ValueError("give either a site (with image_id, or upload) or a url")
        if self.site_id is not None and self.image_id is None and not self.upload:
            raise ValueError("a site source names its image_id (or is an upload)")
        if (self.os_hash_algo is None) != (self.os_hash_value is None):
            raise ValueError("give os_hash_algo and os_hash_value together")
        return self


class ImageSync(SyncPayload):
    name: Name = Field(min_length=1, max_length=255)
    # None: the source image's own (a URL source names them)
    disk_format: Literal[DISK_FORMATS] | None = None  # type: ignore[valid-type]
    container_format: Literal[CONTAINER_FORMATS] | None = None  # type: ignore[valid-type]
    min_disk: int | None = Field(None, ge=0, le=MAX_INT)
    min_ram: int | None = Field(None, ge=0, le=MAX_INT)
    visibility: Literal["private", "shared", "community", "public"] = "private"
    protected: bool = False
    tags: list[Annotated[Name, Field(min_length=1, max_length=255)]] = Field(default_factory=list, max_length=128)
    properties: dict[Annotated[Name, Field(min_length=1, max_length=255)],
                     Annotated[Name, Field(max_length=65535)]] = Field(default_factory=dict, max_length=128)
    source: ImageSource
    members: list[IdentityRef] = Field(default_factory=list, max_length=1000)
    same_id: bool = False  # the copy takes the source image's id (Kingbird's copies without force)
    project: IdentityRef | None = None
    target_bps: int = Field(0, ge=0)  # bandwidth caps per site link (0: none), from the settings
    source_bps: int = Field(0, ge=0)
    keep_previous: bool = False  # a controlled rollout under way: older versions stay (rollback needs them)
    retire_action: Literal["delete", "deactivate"] = "delete"  # what becomes of the other versions' copies

    @field_validator("properties")
    @classmethod
    def _free_keys(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(value) & RESERVED)
        if taken:
            raise ValueError(f"reserved image field(s) cannot be properties: {taken}")
        return value

    @model_validator(mode="after")
    def _formats_of_url(self) -> ImageSync:
        if self.source.url is not None and (self.disk_format is None or self.container_format is None):
            raise ValueError("an image from a URL names its disk_format and container_format")
        return self


def _slim(image: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "protected", "visibility",
            MARK, VERSION)
    return {k: image.get(k) for k in keys}


def source_meta(ctx: SiteContext, p: ImageSync) -> dict[str, Any]:
    """What the copy must equal: the source image's size and hashes (a URL: what the spec says)."""
    src = p.source
    if src.url is not None:
        return {"checksum": src.checksum, "os_hash_algo": src.os_hash_algo, "os_hash_value": src.os_hash_value,
                "size": None}
    conn = ctx.peer_connection(str(src.site_id))
    image = imageapi.get_image(conn, str(src.image_id))
    if image is None:
        raise PermanentSiteError(f"the source image {src.image_id} is gone from site {src.site_name}")
    if image.get("status") != "active":
        raise TemporarySiteError(f"the source image {src.image_id} on {src.site_name} is {image.get('status')}, "
                                 "not active")
    if not p.site_scope:
        _may_read(conn, p, image)
    return {k: image.get(k) for k in ("checksum", "os_hash_algo", "os_hash_value", "size", *INHERITED)}


def _may_read(conn: Any, p: ImageSync, image: dict[str, Any]) -> None:
    """A tenant copies only its own project's images, or public and community ones."""
    if image.get("visibility") in ("public", "community"):
        return
    ref = p.project
    own = syncapi.find_identity(conn, "projects", ident=ref.id, name=ref.name,
                                domain_name=ref.domain_name) if ref is not None else None
    if own is None or image.get("owner") != own:
        raise PermanentSiteError(f"refused: the source image {image.get('id')} is neither the project's own "
                                 "on its site nor public or community")


def same_data(image: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether ``image`` holds the bytes ``want`` describes (multihash first, else md5, and size)."""
    if image.get("status") != "active":
        return False
    if want.get("size") is not None and image.get("size") not in (None, want["size"]):
        return False
    if want.get("os_hash_value") and image.get("os_hash_value"):
        return bool(image.get("os_hash_algo") == want.get("os_hash_algo")
                    and image["os_hash_value"] == want["os_hash_value"])
    if want.get("checksum") and image.get("checksum"):
        return bool(image["checksum"] == want["checksum"])
    return False


def observe(ctx: SiteContext, p: ImageSync) -> dict[str, Any]:
    conn = ctx.connection()
    project = site_project(ctx, p.project, site_scope=p.site_scope)
    images = [_slim(i) for i in imageapi.find_images(conn, name=p.name, owner=project)]
    seen: dict[str, Any] = {"action": p.action, "project": project, "images": images,
                            "created_before": ctx.created_before}
    if p.action == "delete":
        return seen
    want = source_meta(ctx, p)
    seen["want"] = want
    ours = [i for i in images if i.get(MARK) == p.resource_id]
    match = next((i for i in ours if same_data(i, want) and i.get(VERSION) == str(p.generation)), None) or \
        next((i for i in images if same_data(i, want)), None)
    seen["match"] = match
    seen["cleanup"] = [i["id"] for i in ours if i is not match and i.get("status") not in ("active", "deactivated")]
    seen["retire"] = [i["id"] for i in ours if i is not match and i.get("status") == "active"]
    seen["foreign"] = [i["id"] for i in images if i.get(MARK) != p.resource_id and i is not match]
    if match is not None and p.visibility == "shared":
        members = {pid for ref in p.members if (pid := resolve(ctx, "projects", ref))}
        seen["members_add"] = sorted(members - set(imageapi.members(conn, match["id"])))
    return seen


def diff(p: ImageSync, seen: dict[str, Any]) -> Plan | None:
    if p.action == "delete":
        doomed = [i["id"] for i in seen["images"] if i.get(MARK) == p.resource_id or p.purge]
        return {"delete": doomed} if doomed else None
    match = seen["match"]
    if p.keep_previous:
        seen = {**seen, "retire": []}
    if match is not None:
        if not (seen["cleanup"] or seen["retire"] or seen.get("members_add")):
            return None
        return {"keep": match["id"], "cleanup": seen["cleanup"], "retire": seen["retire"],
                "members_add": seen.get("members_add") or []}
    if seen["foreign"] and not (p.force or p.owned or seen["created_before"]):
        raise PermanentSiteError(
            f"image {p.name!r} already exists in this site's project with other data ({len(seen['foreign'])} "
            "image(s)); Skyfleet did not create it and does not add a second image of the name (set force to "
            "copy anyway; the existing one is left alone)")
    return {"create": True, "cleanup": seen["cleanup"], "retire": seen["retire"], "project": seen["project"],
            "want": seen["want"]}


def apply(ctx: SiteContext, p: ImageSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if "delete" in plan:
        for image_id in plan["delete"]:
            _delete_checked(conn, ctx, image_id)
        return verdict("deleted", remote_id=None, detail=f"deleted {len(plan['delete'])} image(s)")
    for image_id in plan.get("cleanup") or []:
        imageapi.delete_image(conn, image_id)  # a copy an earlier attempt left unfinished
    if "keep" in plan:
        for project_id in plan.get("members_add") or []:
            imageapi.add_member(conn, plan["keep"], project_id)
        kept = _retire(conn, plan.get("retire") or [], p.retire_action)
        return verdict("in-sync", remote_id=plan["keep"], detail=_kept_note(kept) or "repaired")
    made, stats = copy(ctx, p, project=plan["project"], want=plan["want"])
    kept = _retire(conn, plan.get("retire") or [], p.retire_action)
    return verdict("in-sync", remote_id=made, created=True, detail=_kept_note(kept) or "copied", **stats)


def _kept_note(kept: list[str]) -> str:
    return f"older version(s) kept while servers use them: {', '.join(kept)}" if kept else ""


def _retire(conn: Any, image_ids: list[str], action: str) -> list[str]:
    """Delete (or deactivate) the other versions Skyfleet made here; those servers still use are kept
    (returned)."""
    kept = []
    for image_id in image_ids:
        if action == "deactivate":
            imageapi.deactivate_image(conn, image_id)
            continue
        if imageapi.servers_using(conn, image_id):
            kept.append(image_id)
            continue
        found = imageapi.get_image(conn, image_id)
        if found is not None and found.get("protected"):
            imageapi.update_image(conn, image_id, [{"op": "replace", "path": "/protected", "value": False}])
        imageapi.delete_image(conn, image_id)
    return kept


def _delete_checked(conn: Any, ctx: SiteContext, image_id: str) -> None:
    found = imageapi.get_image(conn, image_id)
    if found is None:
        return
    if found.get("protected"):
        raise PermanentSiteError(f"image {image_id} is protected in site {ctx.site_name}; it is not deleted "
                                 "(unset protected first)")
    users = imageapi.servers_using(conn, image_id)
    if users:
        raise PermanentSiteError(f"image {image_id} is in use by {len(users)} server(s) in site {ctx.site_name} "
                                 f"(e.g. {users[0]}); it is not deleted")
    imageapi.delete_image(conn, image_id)


def copy_body(p: ImageSync, project: str, want: dict[str, Any]) -> dict[str, Any]:
    inherited = {k: getattr(p, k) if getattr(p, k) is not None else want.get(k) for k in INHERITED}
    body: dict[str, Any] = {"name": p.name, **{k: v for k, v in inherited.items() if v is not None},
                            "visibility": p.visibility, "tags": list(p.tags), **p.properties, MARK: str(p.resource_id),
                            VERSION: str(p.generation), "owner": project}
    if p.same_id and p.source.image_id:
        body["id"] = p.source.image_id
    return body


def copy(ctx: SiteContext, p: ImageSync, *, project: str, want: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Create the image in ``project`` of the target and stream the source's bytes into it; it is
    verified against ``want`` (the source's size and hashes), or removed."""
    conn = ctx.connection()
    made = imageapi.create_image(conn, copy_body(p, project, want))
    meter = Meter(ctx, total=want.get("size"), hash_it=not (want.get("os_hash_value") or want.get("checksum")))
    started = time.monotonic()
    try:
        source = primed(_read(ctx, p))  # the source answers before the target waits on the body
        caps = (bandwidth.bucket("out", p.source.site_id or p.source.url or "", p.source_bps),
                bandwidth.bucket("in", ctx.site_id, p.target_bps))
        imageapi.upload(conn, made["id"], meter.count(bandwidth.capped(source, *caps)), size=want.get("size"))
        got = imageapi.get_image(conn, made["id"]) or {}
        _verify(got, want, meter)
        if p.protected:
            imageapi.update_image(conn, made["id"], [{"op": "replace", "path": "/protected", "value": True}])
        if p.visibility == "shared":
            for ref in p.members:
                member = resolve(ctx, "projects", ref)
                if member:
                    imageapi.add_member(conn, made["id"], member)
    except BaseException as exc:
        discard(conn, made["id"])
        if isinstance(exc, SiteError | KeyboardInterrupt | SystemExit):
            raise
        raise TemporarySiteError(f"copy failed: {type(exc).__name__}: {exc}"[:500]) from exc
    seconds = time.monotonic() - started
    return str(made["id"]), {"bytes": meter.done, "seconds": round(seconds, 3), "method": "upload"}


def primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with the first one read now: the source is asked (and has answered) before the upload
    starts, so a slow source login never stalls a target that is already waiting for the body."""
    first = next(chunks, None)
    if first is None:
        return iter(())
    return itertools.chain((first,), chunks)


def _read(ctx: SiteContext, p: ImageSync) -> Iterator[bytes]:
    if p.source.url is not None:
        return web.download(p.source.url, timeout=ctx.timeout)
    return imageapi.download(ctx.peer_connection(str(p.source.site_id)), str(p.source.image_id))


def _verify(got: dict[str, Any], want: dict[str, Any], meter: Meter) -> None:
    expected = dict(want)
    if meter.hash_it:  # a URL without declared hashes: the copy must hold what was sent
        expected.update(meter.digests())
    if expected.get("size") is None:
        expected["size"] = meter.done
    if not same_data(got, expected):
        raise TemporarySiteError(
            f"verification failed: the copy is {got.get('status')!r} with size {got.get('size')}, "
            f"checksum {got.get('checksum')}, expected size {expected.get('size')} and checksum "
            f"{expected.get('checksum') or expected.get('os_hash_value')}; the copy was deleted")


def discard(conn: Any, image_id: str) -> None:
    """Best effort: remove a copy that did not verify (the next attempt cleans up what this misses)."""
    with contextlib.suppress(SiteError):
        imageapi.delete_image(conn, image_id)


class Meter:
    """Counts (and, when the source's hashes are unknown, hashes) the bytes on their way to the target,
    reporting progress at most every ``REPORT_EVERY`` seconds."""

    def __init__(self, ctx: SiteContext, *, total: int | None, hash_it: bool) -> None:
        self.ctx, self.total, self.hash_it = ctx, total, hash_it
        self.done = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha512()
        self._reported = time.monotonic()

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.done += len(chunk)
            if self.hash_it:
                self._md5.update(chunk)
                self._sha.update(chunk)
            now = time.monotonic()
            if now - self._reported >= REPORT_EVERY:
                self._reported = now
                self.ctx.report({"bytes": self.done, "total": self.total})
            yield chunk

    def digests(self) -> dict[str, Any]:
        return {"checksum": self._md5.hexdigest(), "os_hash_algo": "sha512", "os_hash_value": self._sha.hexdigest()}


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    if seen["action"] == "delete":
        if not seen["images"]:
            return verdict("absent", remote_id=None)
        return verdict("kept", remote_id=None, detail="not created by Skyfleet; kept (use purge)")
    match = seen["match"]
    return verdict("in-sync", remote_id=match["id"], created=bool(match.get(MARK)),
                   detail="" if match.get(MARK) else "adopted: an identical image was already there")


def intent(plan: Plan) -> dict[str, Any] | None:
    return {"create": True} if plan.get("create") else None


KIND = register(TaskKind(name="sync.image", description="Copy a declared image to one site, verified.",
                         payload=ImageSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=intent))  # not persistent: a failed copy settles its wave (see rollout)
