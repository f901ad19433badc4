"""``skyfleet keypair|flavor|security-group ...``: declare resources once, see each site's binding.

Each group has create, list, show, set and delete over /v1/keypairs, /v1/flavors and
/v1/security-groups; a placement is --site (repeatable), --selector or --group (default: every
managed site).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

COLUMNS = [("id", "ID"), ("name", "NAME"), ("project_id", "PROJECT"), ("state", "STATE"), ("counts", "SITES"),
           ("operation_id", "OPERATION")]
BINDING_COLUMNS = [("site_name", "SITE"), ("status", "STATUS"), ("owned", "OWNED"), ("remote_id", "REMOTE ID"),
                   ("error", "ERROR")]
Sites = Annotated[list[str] | None, typer.Option("--site", help="Place on this site (repeatable)")]
Selector = Annotated[str | None, typer.Option(help="Place on sites matching a label selector")]
Group = Annotated[str | None, typer.Option(help="Place on the sites of a group")]


def placement(site: list[str] | None, selector: str | None, group: str | None) -> dict[str, Any] | None:
    given = {k: v for k, v in (("sites", site), ("selector", selector), ("group", group)) if v}
    if len(given) > 1:
        raise typer.BadParameter("give one of --site, --selector, --group")
    return given or None


def _call(ctx: typer.Context, method: str, path: str, **kwargs: Any) -> Any:
    c: Ctx = ctx.obj
    try:
        return client_of(c).request(method, path, **kwargs)
    except ApiFailure as exc:
        fail(str(exc))


def _show(ctx: typer.Context, body: Any) -> None:
    c: Ctx = ctx.obj
    if c.fmt == "json" or body is None:
        emit(body if body is not None else {"deleted": True}, fmt="json" if body is not None else c.fmt)
        return
    emit({k: v for k, v in body.items() if k != "bindings"}, fmt=c.fmt)
    emit(body["bindings"], fmt=c.fmt, columns=BINDING_COLUMNS)


def build(path: str, noun: str, spec_of: Any) -> typer.Typer:
    """One command group over /v1/<path>; ``spec_of(**options)`` builds the spec of ``create``."""
    app = typer.Typer(help=f"Desired {noun}s, synced to every placed site.", no_args_is_help=True)

    @app.command("list")
    def list_(ctx: typer.Context) -> None:
        """Desired resources with a count of bindings per status."""
        c: Ctx = ctx.obj
        emit(_call(ctx, "GET", f"/v1/{path}", params={"limit": 1000})["resources"], fmt=c.fmt, columns=COLUMNS)

    @app.command("show")
    def show(ctx: typer.Context, ref: str) -> None:
        """One resource and its binding in each site."""
        _show(ctx, _call(ctx, "GET", f"/v1/{path}/{seg(ref)}"))

    @app.command("delete")
    def delete(ctx: typer.Context, ref: str,
               purge: Annotated[bool, typer.Option(help="Also delete copies Skyfleet did not create")] = False,
               ) -> None:
        """Remove the resource from the sites where Skyfleet created it (all of them with --purge)."""
        _show(ctx, _call(ctx, "DELETE", f"/v1/{path}/{seg(ref)}", params={"purge": purge}))

    @app.command("set")
    def set_(ctx: typer.Context, ref: str, site: Sites = None, selector: Selector = None, group: Group = None,
             spec_file: Annotated[Path | None, typer.Option(help="JSON file with spec fields to change")] = None,
             force: Annotated[bool | None, typer.Option("--force/--no-force")] = None,
             replace: Annotated[bool | None, typer.Option("--replace/--no-replace")] = None) -> None:
        """Change the placement, spec or options; converges again at once."""
        body: dict[str, Any] = {"placement": placement(site, selector, group), "force": force, "replace": replace}
        if spec_file is not None:
            body["spec"] = json.loads(spec_file.read_text())
        _show(ctx, _call(ctx, "PATCH", f"/v1/{path}/{seg(ref)}", json={k: v for k, v in body.items() if v is not None}))

    app.command("create")(_create(path, spec_of))
    return app


def _create(path: str, spec_of: Any) -> Any:
    def create(ctx: typer.Context, name: str, site: Sites = None, selector: Selector = None, group: Group = None,
               spec_file: Annotated[Path | None, typer.Option(help="JSON file with the spec's fields")] = None,
               public_key: Annotated[Path | None, typer.Option(help="keypair: public key file")] = None,
               vcpus: Annotated[int | None, typer.Option(help="flavor: vCPUs")] = None,
               ram: Annotated[int | None, typer.Option(help="flavor: RAM in MiB")] = None,
               disk: Annotated[int | None, typer.Option(help="flavor: disk in GiB")] = None,
               description: Annotated[str | None, typer.Option(help="security group: description")] = None,
               force: Annotated[bool, typer.Option(help="Take over a different resource of the same name")] = False,
               replace: Annotated[bool, typer.Option(help="flavor: recreate when immutable fields drift")] = False,
               owner: Annotated[str, typer.Option(help="keypair: caller (mapped user) or site")] = "caller",
               ) -> None:
        """Declare a resource; answers at once with the operation converging it."""
        spec: dict[str, Any] = json.loads(spec_file.read_text()) if spec_file else {}
        spec.update(spec_of(name=name, public_key=public_key, vcpus=vcpus, ram=ram, disk=disk,
                            description=description))
        body: dict[str, Any] = {"spec": spec, "force": force, "replace": replace, "owner": owner}
        where = placement(site, selector, group)
        if where:
            body["placement"] = where
        _show(ctx, _call(ctx, "POST", f"/v1/{path}", json=body))
    return create


def _keypair(*, name: str, public_key: Path | None, **_: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if public_key is not None:
        spec["public_key"] = public_key.read_text().strip()
    return spec


def _flavor(*, name: str, vcpus: int | None, ram: int | None, disk: int | None, **_: Any) -> dict[str, Any]:
    given = {"vcpus": vcpus, "ram": ram, "disk": disk}
    return {"name": name, **{k: v for k, v in given.items() if v is not None}}


def _group(*, name: str, description: str | None, **_: Any) -> dict[str, Any]:
    return {"name": name, **({"description": description} if description is not None else {})}


keypair_app = build("keypairs", "keypair", _keypair)
flavor_app = build("flavors", "flavor", _flavor)
security_group_app = build("security-groups", "security group", _group)
