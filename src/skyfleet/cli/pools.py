"""``skyfleet pool ...``: global address pools from the command line (an HTTP client of /v1/address-pools)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

app = typer.Typer(help="Address pools that hand each site a non-overlapping prefix.", no_args_is_help=True)
COLUMNS = [("name", "NAME"), ("cidr", "CIDR"), ("project_id", "PROJECT"), ("allocated", "ALLOCATED"), ("id", "ID")]
ALLOCATION_COLUMNS = [("id", "ID"), ("cidr", "CIDR"), ("site", "SITE"), ("project_id", "PROJECT"),
                      ("created_at", "CREATED")]


def _call(c: Ctx, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return client_of(c).request(method, path, **kwargs)
    except ApiFailure as exc:
        fail(str(exc))


def _pages(c: Ctx, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        body = _call(c, "GET", path, params={"limit": 1000, "offset": offset})
        items.extend(body["items"])
        offset = body.get("next_offset")
    return items


@app.command("create")
def create(ctx: typer.Context, name: str,
           cidr: Annotated[str, typer.Argument(help="e.g. 10.128.0.0/9 or fd00:abcd::/48")],
           shared: Annotated[bool, typer.Option("--shared", help="Every tenant may allocate (admins)")] = False,
           project: Annotated[str | None, typer.Option(help="Owner project (admins)")] = None,
           description: Annotated[str, typer.Option(help="Free text")] = "") -> None:
    """Create a pool of your project (admins: of any project, or shared)."""
    c: Ctx = ctx.obj
    body: dict[str, Any] = {"name": name, "cidr": cidr, "shared": shared, "description": description}
    if project:
        body["project"] = project
    emit(_call(c, "POST", "/v1/address-pools", json=body), fmt=c.fmt)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Your project's pools and the shared ones."""
    c: Ctx = ctx.obj
    emit(_pages(c, "/v1/address-pools"), fmt=c.fmt, columns=COLUMNS)


@app.command("allocate")
def allocate(ctx: typer.Context, pool: str,
             site: Annotated[str, typer.Option(help="Site id or name")],
             prefix_length: Annotated[int, typer.Option("--prefix-length", "-l", help="e.g. 24")]) -> None:
    """Hand a site the first free prefix of that length."""
    c: Ctx = ctx.obj
    emit(_call(c, "POST", f"/v1/address-pools/{seg(pool)}/allocations",
               json={"site": site, "prefix_length": prefix_length}), fmt=c.fmt)


@app.command("allocations")
def allocations(ctx: typer.Context, pool: str) -> None:
    """Prefixes handed out, in address order."""
    c: Ctx = ctx.obj
    emit(_pages(c, f"/v1/address-pools/{seg(pool)}/allocations"), fmt=c.fmt, columns=ALLOCATION_COLUMNS)


@app.command("release")
def release(ctx: typer.Context, pool: str, allocation_id: int) -> None:
    """Give a prefix back to its pool."""
    c: Ctx = ctx.obj
    _call(c, "DELETE", f"/v1/address-pools/{seg(pool)}/allocations/{allocation_id}")
    emit({"released": allocation_id}, fmt=c.fmt)


@app.command("delete")
def delete(ctx: typer.Context, pool: str) -> None:
    """Remove an empty pool."""
    c: Ctx = ctx.obj
    _call(c, "DELETE", f"/v1/address-pools/{seg(pool)}")
    emit({"deleted": pool}, fmt=c.fmt)
