"""``skyfleet image ...``: declare an image once and have it copied, verified, to the fleet's sites.

Why it exists: /v1/images takes a source (an image on a site, or a URL), metadata, a placement and a
sync mode, and answers at once while the engine copies; people want one command that says what to
copy and, with ``--wait``, stays until the copies are done, showing the bytes moved and each failed
site's error. The commands are create, list, show, use (a lazy image's first use on a site), set (a
new source is a new version), delete, and rollout / rollback for a controlled image.

Exit codes of ``--wait``: 0 when every copy is in sync (or the image is gone after a delete), 1 when
a site's copy failed (its error is printed), 3 on ``--timeout``; 2 is a usage error, as for every
command.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from skyfleet.cli.client import ApiFailure
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.image_wait import Outcome, follow, human, image_path
from skyfleet.cli.output import emit, err_console
from skyfleet.cli.sync import Group, Selector, Sites, placement

app = typer.Typer(help="Declared images, copied (verified) to the sites of their placement.", no_args_is_help=True)
COLUMNS = [("id", "ID"), ("name", "NAME"), ("project_id", "PROJECT"), ("options.mode", "MODE"),
           ("source", "SOURCE"), ("state", "STATE"), ("counts", "SITES")]
BINDING_COLUMNS = [("site_name", "SITE"), ("status", "STATUS"), ("copied", "COPIED"), ("owned", "OWNED"),
                   ("remote_id", "REMOTE ID"), ("error", "ERROR")]
TIMED_OUT = 3


class Visibility(StrEnum):
    private = "private"
    shared = "shared"
    community = "community"
    public = "public"


class Mode(StrEnum):
    none = "none"
    auto = "auto"
    lazy = "lazy"
    controlled = "controlled"


FromSite = Annotated[str | None, typer.Option("--from-site", help="Site (id or name) holding the source image")]
FromImage = Annotated[str | None, typer.Option("--from-image", help="Id of the source image on --from-site")]
FromUrl = Annotated[str | None, typer.Option("--from-url", help="http(s) URL of the image (on the admin's "
                                             "allow-list)")]
Checksum = Annotated[str | None, typer.Option(help="md5 the bytes must have (URL sources)")]
DiskFormat = Annotated[str | None, typer.Option(help="raw, qcow2, ... (default: the source's)")]
ContainerFormat = Annotated[str | None, typer.Option(help="bare, ovf, ... (default: the source's)")]
MinDisk = Annotated[int | None, typer.Option(min=0, help="GiB (default: the source's)")]
MinRam = Annotated[int | None, typer.Option(min=0, help="MiB (default: the source's)")]
VisibilityOpt = Annotated[Visibility | None, typer.Option(help="Visibility of the copies (public: fleet admins)")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable)")]
Properties = Annotated[list[str] | None, typer.Option("--property", help="KEY=VALUE image property (repeatable)")]
Members = Annotated[list[str] | None, typer.Option("--member", help="Project (id or name) a shared image is "
                                                   "shared with (repeatable)")]
ModeOpt = Annotated[Mode | None, typer.Option(help="none: catalogue only; auto: copy to every placed site; "
                                              "lazy: copy to a site on first use; controlled: copy in waves "
                                              "(the API's default plan: one site, then 10 %, then the rest)")]
Wait = Annotated[bool, typer.Option("--wait", help="Stay until every copy is in sync or failed, showing progress")]
Timeout = Annotated[float, typer.Option(min=1, help="Seconds --wait waits at most")]


def source_of(site: str | None, image: str | None, url: str | None, checksum: str | None) -> dict[str, Any] | None:
    """The request's source, or None when none is given; a typer usage error when it is half given."""
    if url is not None and (site is not None or image is not None):
        raise typer.BadParameter("give either --from-site and --from-image, or --from-url, not both",
                                 param_hint="--from-url")
    if url is not None:
        return {"url": url, **({"checksum": checksum} if checksum else {})}
    if (site is None) != (image is None):
        raise typer.BadParameter("--from-site and --from-image go together", param_hint="--from-site/--from-image")
    if site is None:
        if checksum is not None:
            raise typer.BadParameter("--checksum needs a source", param_hint="--checksum")
        return None
    return {"site": site, "image_id": image, **({"checksum": checksum} if checksum else {})}


def properties_of(pairs: list[str] | None) -> dict[str, str] | None:
    """``KEY=VALUE`` options as a dict; a usage error names the one without a key or an '='."""
    if pairs is None:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--property")
        out[key.strip()] = value
    return out


def metadata(*, disk_format: str | None, container_format: str | None, min_disk: int | None,
             min_ram: int | None, visibility: Visibility | None, protected: bool | None, tags: list[str] | None,
             properties: list[str] | None, members: list[str] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"disk_format": disk_format, "container_format": container_format,
                              "min_disk": min_disk, "min_ram": min_ram,
                              "visibility": visibility.value if visibility else None, "protected": protected,
                              "tags": tags, "properties": properties_of(properties), "members": members}
    return {k: v for k, v in fields.items() if v is not None}


def _call(ctx: typer.Context, method: str, path: str, **kwargs: Any) -> Any:
    c: Ctx = ctx.obj
    try:
        return client_of(c).request(method, path, **kwargs)
    except ApiFailure as exc:
        fail(str(exc))


def _source_text(spec: dict[str, Any]) -> str:
    src = spec.get("source") or {}
    site = src.get("site_name") or src.get("site_id")
    if src.get("upload") and not src.get("image_id"):
        return f"{site}: upload, no bytes yet"
    return str(src.get("url") or f"{site}:{src.get('image_id')}")


def _copied(binding: dict[str, Any]) -> str:
    progress = binding.get("progress") or {}
    if binding["status"] != "copying" or not progress:
        return ""
    total = progress.get("total")
    return human(progress.get("bytes") or 0) + (f" of {human(total)}" if total else "")


def _summary(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a person reads in a table: the spec's values that are set, the mode, the source."""
    spec, options = body["spec"], body.get("options") or {}
    declared = {k: v for k, v in spec.items() if k not in ("name", "source") and v not in (None, [], {})}
    return {"id": body["id"], "name": body["name"], "project_id": body["project_id"], "state": body["state"],
            "mode": options.get("mode"), "source": _source_text(spec), **declared,
            "placement": body["placement"] or "every managed site",
            "generation": body["generation"], "counts": body["counts"], "operation_id": body["operation_id"],
            "updated_at": body["updated_at"]}


def _show(ctx: typer.Context, body: dict[str, Any] | None) -> None:
    c: Ctx = ctx.obj
    if body is None:
        emit({"deleted": True}, fmt=c.fmt)
        return
    if c.fmt == "json":
        emit(body, fmt="json")
        return
    emit(_summary(body), fmt=c.fmt)
    emit([{**b, "copied": _copied(b)} for b in body["bindings"]], fmt=c.fmt, columns=BINDING_COLUMNS)


def _finish(ctx: typer.Context, body: dict[str, Any] | None, *, wait: bool, timeout: float,
            only_site: str | None = None, until_gone: bool = False) -> None:
    """Show the answer; with ``wait``, first follow the copies and exit 1 or 3 when they did not all land."""
    if not wait or body is None:
        _show(ctx, body)
        return
    c: Ctx = ctx.obj
    try:
        outcome = follow(client_of(c), body["id"], name=body["name"], timeout=timeout, only_site=only_site,
                         until_gone=until_gone or body.get("state") == "deleting")
    except ApiFailure as exc:
        fail(str(exc))
    _show(ctx, outcome.body)
    _verdict(body["name"], outcome, timeout)


def _verdict(name: str, outcome: Outcome, timeout: float) -> None:
    for site, error in outcome.tally.failed:
        err_console.print(f"[red]error:[/red] {site}: {error}", soft_wrap=True, highlight=False)
    if outcome.tally.stopped:
        err_console.print(f"[red]error:[/red] rollout: {outcome.tally.stopped}", soft_wrap=True, highlight=False)
    if outcome.tally.failed or outcome.tally.stopped:
        fail(f"image {name!r}: {len(outcome.tally.failed)} site(s) failed"
             + ("; the rollout stopped" if outcome.tally.stopped else ""))
    if outcome.timed_out:
        fail(f"image {name!r}: not settled after {timeout:g} s ({outcome.tally.describe()})", code=TIMED_OUT)


@app.command("create")
def create(ctx: typer.Context, name: str, from_site: FromSite = None, from_image: FromImage = None,
           from_url: FromUrl = None, checksum: Checksum = None, disk_format: DiskFormat = None,
           container_format: ContainerFormat = None, min_disk: MinDisk = None, min_ram: MinRam = None,
           visibility: VisibilityOpt = None,
           protected: Annotated[bool, typer.Option("--protected", help="Copies cannot be deleted until unprotected")]
           = False,
           tag: Tags = None, prop: Properties = None, member: Members = None, mode: ModeOpt = None,
           site: Sites = None, selector: Selector = None, group: Group = None,
           force: Annotated[bool, typer.Option("--force", help="Copy even where another image of the name exists "
                                               "(left alone)")] = False,
           wait: Wait = False, timeout: Timeout = 3600) -> None:
    """Declare an image from an image on a site or a URL; copies start at once (mode auto)."""
    source = source_of(from_site, from_image, from_url, checksum)
    if source is None:
        raise typer.BadParameter("give --from-site and --from-image, or --from-url", param_hint="source")
    body: dict[str, Any] = {"name": name, "source": source, "force": force, **metadata(
        disk_format=disk_format, container_format=container_format, min_disk=min_disk, min_ram=min_ram,
        visibility=visibility, protected=protected or None, tags=tag, properties=prop, members=member)}
    where = placement(site, selector, group)
    if where:
        body["placement"] = where
    if mode is not None:
        body["mode"] = mode.value
    _finish(ctx, _call(ctx, "POST", "/v1/images", json=body), wait=wait, timeout=timeout)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Declared images with their mode, source and a count of copies per status."""
    c: Ctx = ctx.obj
    try:
        rows = client_of(c).pages("/v1/images", "resources", limit=None)
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(rows, fmt="json")
        return
    emit([{**r, "source": _source_text(r["spec"])} for r in rows], fmt=c.fmt, columns=COLUMNS)


@app.command("show")
def show(ctx: typer.Context, name: str, wait: Wait = False, timeout: Timeout = 3600) -> None:
    """One image and its copy on each site (bytes copied while a copy is under way)."""
    _finish(ctx, _call(ctx, "GET", image_path(name)), wait=wait, timeout=timeout)


@app.command("use")
def use(ctx: typer.Context, name: str, site_ref: Annotated[str, typer.Argument(metavar="SITE")],
        wait: Wait = False, timeout: Timeout = 3600) -> None:
    """Copy the image to SITE now (a lazy image's first use there); --wait waits for that copy only."""
    body = _call(ctx, "POST", f"{image_path(name)}/sites/{quote(site_ref, safe='')}")
    _finish(ctx, body, wait=wait, timeout=timeout, only_site=site_ref)


@app.command("set")
def set_(ctx: typer.Context, name: str, from_site: FromSite = None, from_image: FromImage = None,
         from_url: FromUrl = None, checksum: Checksum = None, disk_format: DiskFormat = None,
         container_format: ContainerFormat = None, min_disk: MinDisk = None, min_ram: MinRam = None,
         visibility: VisibilityOpt = None,
         protected: Annotated[bool | None, typer.Option("--protected/--unprotected")] = None,
         tag: Tags = None, prop: Properties = None, member: Members = None, mode: ModeOpt = None,
         site: Sites = None, selector: Selector = None, group: Group = None,
         force: Annotated[bool | None, typer.Option("--force/--no-force")] = None,
         wait: Wait = False, timeout: Timeout = 3600) -> None:
    """Change an image: a new source is a new version (copied, then the older copies are deleted);
    --tag, --property and --member replace the whole list."""
    body: dict[str, Any] = metadata(
        disk_format=disk_format, container_format=container_format, min_disk=min_disk, min_ram=min_ram,
        visibility=visibility, protected=protected, tags=tag, properties=prop, members=member)
    source = source_of(from_site, from_image, from_url, checksum)
    extra = {"source": source, "placement": placement(site, selector, group), "force": force,
             "mode": mode.value if mode else None}
    body.update({k: v for k, v in extra.items() if v is not None})
    if not body:
        raise typer.BadParameter("nothing to change: give a source, metadata, --mode or a placement")
    _finish(ctx, _call(ctx, "PATCH", image_path(name), json=body), wait=wait, timeout=timeout)


@app.command("delete")
def delete(ctx: typer.Context, name: str,
           purge: Annotated[bool, typer.Option(help="Also delete images of the name Skyfleet did not create")]
           = False, wait: Annotated[bool, typer.Option("--wait", help="Stay until the image is gone")] = False,
           timeout: Timeout = 3600) -> None:
    """Delete the copies Skyfleet made (all images of the name with --purge), then the declaration."""
    body = _call(ctx, "DELETE", image_path(name), params={"purge": purge})
    _finish(ctx, body, wait=wait, timeout=timeout, until_gone=True)


class Steer(StrEnum):
    pause = "pause"
    resume = "resume"
    abort = "abort"


@app.command("rollout")
def rollout(ctx: typer.Context, name: str, action: Annotated[Steer, typer.Argument(help="pause, resume or abort")],
            wait: Wait = False, timeout: Timeout = 3600) -> None:
    """Pause, resume (retrying the current wave's failed sites) or abort a controlled rollout."""
    body = _call(ctx, "POST", f"{image_path(name)}/rollout/{action.value}")
    _finish(ctx, body, wait=wait, timeout=timeout)


@app.command("rollback")
def rollback(ctx: typer.Context, name: str,
             deactivate: Annotated[bool, typer.Option("--deactivate", help="Deactivate the new copies instead of "
                                                      "deleting them")] = False,
             wait: Wait = False, timeout: Timeout = 3600) -> None:
    """Put every site back on the image's previous version."""
    body = _call(ctx, "POST", f"{image_path(name)}/rollback", json={"action": "deactivate" if deactivate
                                                                     else "delete"})
    _finish(ctx, body, wait=wait, timeout=timeout)
