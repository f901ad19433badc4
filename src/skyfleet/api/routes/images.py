"""/v1/images: an image declared once (metadata, a source, a placement and a sync mode) and copied,
verified, to the sites its mode selects. The copies are the resource's per-site bindings, shown with
their status (``copying`` with bytes done, ``in-sync``, ``failed`` with the site's error, ...).

A tenant declares images of its own project; they are copied into its mapped project on each site,
from a source image the project owns (or a public one) or from a URL on the admin's allow-list.
Public visibility needs a fleet admin. ``POST /v1/images/{ref}/sites/{site}`` asks for a copy on one
site (the first use of a ``lazy`` image; harmless for the others).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.body_limit import OVER
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of, list_view, remove_resource, show_view
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.images import rollout
from skyfleet.domains.images import service as images
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.schemas import Placement, ResourceCreate, ResourceList, ResourceOut, ResourceUpdate
from skyfleet.domains.text import Name
from skyfleet.errors import BadGateway, Conflict, Invalid, NotFound, SiteError, TooLarge
from skyfleet.reconcile import image_upload
from skyfleet.reconcile.kinds import validate_payload
from skyfleet.reconcile.kinds.sync_image import ImageSync

router = APIRouter(prefix="/v1/images", tags=["images"], dependencies=CLEAN_URL)
KIND = "image"
Mode = Literal["none", "auto", "lazy", "controlled"]
NEXT_PLAN = "next_rollout"  # options key: a plan given with no new version, for the next one


class RolloutPlan(BaseModel):
    """How a controlled image version goes out: waves, each judged before the next."""

    model_config = ConfigDict(extra="forbid")

    waves: list[dict[str, Any]] = Field(
        default_factory=lambda: list(rollout.DEFAULT_PLAN), max_length=100,
        description='each one of {"count": N}, {"percent": P}, {"group": G}, {"sites": [...]}, {"rest": true}')
    max_failures: int = Field(0, ge=0, description="failed sites a wave may have before the rollout pauses")
    manual: bool = Field(False, description="pause after every wave; the next starts on resume")


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["delete", "deactivate"] = Field("delete", description="what becomes of the new copies")


class SourceIn(BaseModel):
    """Where the image's bytes are: an image on a registered site, or an http(s) URL."""

    model_config = ConfigDict(extra="forbid")

    site: Name | None = Field(None, max_length=255, description="site id or name holding the source image")
    image_id: Name | None = Field(None, max_length=64)
    url: str | None = Field(None, max_length=2000, description="http(s) URL on the admin's allow-list")
    upload: bool = Field(False, description="the bytes will be sent with PUT /v1/images/{ref}/file, into `site`")
    checksum: str | None = Field(None, description="md5 the bytes must have (URL sources)")
    os_hash_algo: str | None = None
    os_hash_value: str | None = None


class ImageFields(BaseModel):
    """The image's metadata; omitted formats and minimums are the source image's."""

    model_config = ConfigDict(extra="forbid")

    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    visibility: Literal["private", "shared", "community", "public"] | None = None
    protected: bool | None = None
    tags: list[str] | None = None
    properties: dict[str, str] | None = None
    members: list[Annotated[Name, Field(max_length=255)]] | None = Field(
        None, max_length=1000, description="projects (id or name) a shared image is shared with")


class ImageCreate(ImageFields):
    name: Name = Field(min_length=1, max_length=255)
    source: SourceIn
    placement: Placement = Field(default_factory=Placement)
    mode: Mode = "auto"
    rollout: RolloutPlan | None = Field(None, description="mode controlled: the waves (default: one canary "
                                                          "site, then 10 %, then the rest)")
    force: bool = Field(False, description="copy even where another image of the name exists (left alone)")


class ImageUpdate(ImageFields):
    source: SourceIn | None = Field(None, description="a new version: copied where the mode puts it, then the "
                                                      "older copies Skyfleet made are deleted")
    placement: Placement | None = None
    mode: Mode | None = None
    rollout: RolloutPlan | None = None
    force: bool | None = None


META = ("disk_format", "container_format", "min_disk", "min_ram", "visibility", "protected", "tags", "properties")


def _source(session: Any, source: SourceIn, settings: Any) -> dict[str, Any]:
    hashes = {k: getattr(source, k) for k in ("checksum", "os_hash_algo", "os_hash_value")
              if getattr(source, k) is not None}
    if source.url is not None:
        if source.site is not None or source.image_id is not None or source.upload:
            raise Invalid("source: give either site and image_id, or url")
        if not images.url_allowed(source.url, settings.image_url_allow):
            raise Invalid("source.url is not on the image URL allow-list (image_url_allow); ask a fleet admin"
                          if settings.image_url_allow else "URL sources are off here: no image_url_allow is set")
        return {"url": source.url, **hashes}
    if source.upload and (source.site is None or source.image_id is not None):
        raise Invalid("source: an upload names the site that takes the bytes, and no image_id")
    if source.site is None or (source.image_id is None and not source.upload):
        raise Invalid("source: give site and image_id (an image on a registered site), site and upload, or url")
    try:
        site = sites.get_site(session, source.site)
    except NotFound:
        raise Invalid(f"source.site: no site {source.site!r}") from None
    if not site.managed:
        raise Invalid(f"source.site: site {site.name} is not managed")
    return {"site_id": site.id, "site_name": site.name, "image_id": source.image_id,
            **({"upload": True} if source.upload else {}), **hashes}


def _spec(principal: Principal, name: str, fields: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The spec as the kind validates it (400 with the reason otherwise)."""
    if fields.get("visibility") == "public":
        access.require(principal, "image.public", "visibility public")
    spec: dict[str, Any] = {"name": name, "source": source,
                            **{k: v for k, v in fields.items() if k in META and v is not None}}
    if fields.get("members") is not None:
        spec["members"] = [{"id": m, "name": m} for m in fields["members"]]
    normalised = validate_payload(service.TASK_KIND[KIND], spec)
    return {k: normalised[k] for k in (*META, "name", "source", "members") if k in normalised}


def _options(runtime: Any, mode: str, force: bool) -> dict[str, Any]:
    settings = runtime.settings
    return {"mode": mode, "force": force, "target_bps": settings.image_target_bps,
            "source_bps": settings.image_source_bps}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def create(body: ImageCreate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    now = utcnow()
    with transaction(runtime.factory) as session:
        spec = _spec(principal, body.name, body.model_dump(), _source(session, body.source, runtime.settings))
        service.validate_placement(session, body.placement)
        caller = caller_of(principal, runtime.settings.home_domain_name)
        data = ResourceCreate(spec=spec, placement=body.placement, force=body.force)
        resource = service.create(session, kind=KIND, data=data, spec=spec, caller=caller, now=now)
        resource.options = {**resource.options, **_options(runtime, body.mode, body.force)}
        if body.mode == "controlled":
            _start_rollout(session, resource, body.rollout, previous=None, now=now)
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.get("", response_model=ResourceList)
def list_images(runtime: RuntimeDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                marker: str | None = None) -> ResourceList:
    return list_view(runtime, principal, KIND, limit=limit, marker=marker)


@router.get("/{ref}", response_model=ResourceOut)
def show(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    return show_view(runtime, principal, KIND, ref)


@router.patch("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def patch(ref: str, body: ImageUpdate, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        changed = {k: v for k, v in body.model_dump(exclude={"source", "placement", "mode", "force", "rollout"}).items()
                   if v is not None}
        before = dict(resource.spec)
        source = _source(session, body.source, runtime.settings) if body.source is not None \
            else resource.spec["source"]
        current = {**resource.spec, **({"members": [m.get("name") or m.get("id") for m in resource.spec["members"]]}
                                       if resource.spec.get("members") else {})}
        spec = _spec(principal, resource.name, {**current, **changed}, source)
        service.update(session, resource=resource, data=ResourceUpdate(placement=body.placement, force=body.force),
                       spec=spec, now=now)
        if body.mode is not None:
            resource.options = {**resource.options, "mode": body.mode}
        if resource.options.get("mode") == "controlled" and resource.spec != before:
            _start_rollout(session, resource, body.rollout, previous=before, now=now)
        elif body.rollout is not None:  # no new version: the plan of the next one (e.g. the next upload)
            rollout.check_plan(body.rollout.waves)
            resource.options = {**resource.options, NEXT_PLAN: body.rollout.model_dump()}
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.delete("/{ref}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut,
               responses={204: {"description": "Deleted at once: it was on no site."}})
def delete(ref: str, runtime: RuntimeDep, principal: PrincipalDep,
           purge: Annotated[bool, Query(description="also delete images of the name Skyfleet did not create")]
           = False) -> ResourceOut | Response:
    if purge:
        access.require(principal, "sync.purge", "purge (deleting images Skyfleet did not create)")
    return remove_resource(runtime, principal, KIND, ref, purge)


def _start_rollout(session: Any, resource: Any, plan: RolloutPlan | None, *, previous: dict[str, Any] | None,
                   now: Any) -> None:
    earlier = resource.options.get("rollout") or {}
    if plan is None and resource.options.get(NEXT_PLAN):  # given by a PATCH without a new version
        plan = RolloutPlan(**resource.options[NEXT_PLAN])
    if plan is None:  # the plan of the image's last rollout, else the default one
        plan = RolloutPlan(**{k: earlier[k] for k in ("max_failures", "manual") if k in earlier},
                           **({"waves": earlier["plan"]} if earlier.get("plan") else {}))
    rollout.start(resource, placed=service.placed_sites(session, resource.placement),
                  plan=rollout.check_plan(plan.waves), max_failures=plan.max_failures, previous=previous, now=now,
                  manual=plan.manual)
    resource.options = {k: v for k, v in resource.options.items() if k != NEXT_PLAN}


@router.post("/{ref}/rollout/{action}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def steer_rollout(ref: str, action: Literal["pause", "resume", "abort"], runtime: RuntimeDep,
                  principal: PrincipalDep) -> ResourceOut:
    """Pause, resume or abort a controlled rollout (resume retries the failed sites of the current wave)."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        {"pause": rollout.pause, "resume": rollout.resume, "abort": rollout.abort}[action](resource, now=now)
        if action == "resume":
            conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.post("/{ref}/rollback", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def rollback(ref: str, runtime: RuntimeDep, principal: PrincipalDep, body: RollbackBody | None = None) -> ResourceOut:
    """Put every site back on the previous version; the new copies are deleted or deactivated."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        rollout.rollback(session, resource, action=(body or RollbackBody()).action, now=now)
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.put("/{ref}/file", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_file(ref: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    """Stream the image's bytes into its seed site (declared with ``source: {site, upload: true}``); each
    upload is a new version, copied on from the seed like any image. Answers once the seed holds the
    bytes, verified; the copies to the other sites go on in the background."""
    seed = await anyio.to_thread.run_sync(_seed, runtime, principal, ref, _length(request))
    try:
        stored = await image_upload.upload(seed, request.stream(), timeout=runtime.settings.site_timeout)
    except SiteError as exc:
        raise BadGateway(f"the seed site {seed.site_name} did not take the image: {exc.message}") from exc
    except ClientDisconnect as exc:
        over = request.scope.get(OVER)
        if over:
            raise TooLarge(f"{over}; nothing was kept") from exc
        raise
    return await anyio.to_thread.run_sync(_uploaded, runtime, principal, ref, stored)


def _length(request: Request) -> int | None:
    text = request.headers.get("content-length", "").strip()
    return int(text) if text.isdigit() else None


def _seed(runtime: Any, principal: Principal, ref: str, size: int | None) -> image_upload.Seed:
    with read_only(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal))
        if size == 0:  # would be a new version of no bytes, replacing the current one on every site
            raise Invalid("the request body is empty: an upload carries the image's bytes")
        source = resource.spec.get("source") or {}
        if not source.get("upload"):
            raise Conflict(f"image {resource.name!r} takes its bytes from its source, not from an upload "
                           "(declare it with source {site, upload: true})")
        site = sites.get_site(session, source["site_id"])
        payload = ImageSync.model_validate({**resource.spec, **conv.owner_refs(KIND, resource.owner),
                                           "resource_id": resource.id, "generation": resource.generation + 1})
        return image_upload.Seed(site_id=site.id, site_name=site.name,
                                 auth=sites.decrypt_auth(runtime.box, site), payload=payload, size=size)


def _uploaded(runtime: Any, principal: Principal, ref: str, stored: dict[str, Any]) -> ResourceOut:
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        before = dict(resource.spec)
        source = {**before["source"], "image_id": stored["image_id"]}
        service.update(session, resource=resource, data=ResourceUpdate(), spec={**before, "source": source}, now=now)
        if resource.options.get("mode") == "controlled":  # the first upload too: its rollout starts now
            _start_rollout(session, resource, None, previous=before if before["source"].get("image_id") else None,
                           now=now)
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out


@router.post("/{ref}/sites/{site}", status_code=status.HTTP_202_ACCEPTED, response_model=ResourceOut)
def use_on_site(ref: str, site: str, runtime: RuntimeDep, principal: PrincipalDep) -> ResourceOut:
    """Copy the image to one site now (a lazy image's first use there); concurrent asks make one copy."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        resource = service.get(session, kind=KIND, ref=ref, caller=caller_of(principal), for_update=True)
        try:
            target = sites.get_site(session, site)
        except NotFound:
            raise NotFound(f"no site {site!r}") from None
        placed = service.placed_sites(session, resource.placement)
        images.activate(session, resource=resource, site=target, placed=placed, now=now)
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = conv.render(session, resource, conv.bindings_of(session, resource))
    runtime.wake()
    return out
