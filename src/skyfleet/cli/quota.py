"""``skyfleet quota ...`` and ``skyfleet project ...``: global quotas, classes, usage and project
mappings from the command line (an HTTP client of /v1/quotas, /v1/quota-classes, /v1/projects)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

app = typer.Typer(help="Global quotas: one limit per project across all sites.", no_args_is_help=True)
class_app = typer.Typer(help="Named quota classes.", no_args_is_help=True)
project_app = typer.Typer(help="Where a global project lives on each site.", no_args_is_help=True)
app.add_typer(class_app, name="class")
SITE_COLUMNS = [("site_name", "SITE"), ("availability", "AVAILABILITY"), ("usage", "USAGE"),
                ("applied", "LIMITS WRITTEN"), ("observed_at", "OBSERVED AT"), ("last_error", "LAST ERROR")]
Limit = Annotated[list[str] | None, typer.Option("--limit", "-l", help="resource=value, e.g. cores=40 (repeatable)")]


def parse_limits(values: list[str] | None) -> dict[str, int]:
    limits = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        try:
            limits[key.strip()] = int(value)
        except ValueError:
            raise typer.BadParameter(f"limit {item!r} must be resource=integer") from None
        if not sep:
            raise typer.BadParameter(f"limit {item!r} must be resource=integer")
    return limits


def call(ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    c: Ctx = ctx.obj
    try:
        return client_of(c).request(method, path, json=body)
    except ApiFailure as exc:
        fail(str(exc))


def fmt(ctx: typer.Context) -> str:
    c: Ctx = ctx.obj
    return c.fmt


UNMAPPED_COLUMNS = [("site_name", "UNMAPPED SITE"), ("absent", "ABSENT"), ("reason", "REASON")]


def emit_with_warnings(ctx: typer.Context, body: dict[str, Any]) -> None:
    """The answer, then (tables) the sites where the project is not mapped and the warnings."""
    if fmt(ctx) == "json":
        emit(body, fmt="json")
        return
    emit({k: v for k, v in body.items() if k not in ("unmapped_sites", "warnings")}, fmt=fmt(ctx))
    unmapped = body.get("unmapped_sites") or []
    if unmapped and isinstance(unmapped[0], dict):
        emit(unmapped, fmt="table", columns=UNMAPPED_COLUMNS)
    for warning in body.get("warnings") or []:
        typer.echo(f"WARNING: {warning}")


@app.command("show")
def show(ctx: typer.Context, project: str) -> None:
    """Effective global limits of PROJECT, and the sites where it is not mapped."""
    emit_with_warnings(ctx, call(ctx, "GET", f"/v1/quotas/{seg(project)}"))


@app.command("set")
def set_(
    ctx: typer.Context, project: str, limit: Limit = None,
    quota_class: Annotated[str | None, typer.Option("--class")] = None,
    mode: Annotated[str | None, typer.Option(help="hard, soft or kingbird")] = None,
    policy: Annotated[str | None, typer.Option(help="proportional, even or weighted")] = None,
    weight: Annotated[list[str] | None, typer.Option(help="site=weight (repeatable)")] = None,
    project_name: Annotated[str | None, typer.Option(help="Name in the home Keystone")] = None,
    domain_name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Set global limits (merged), class, mode or share policy of PROJECT (admins)."""
    body: dict[str, Any] = {"limits": parse_limits(limit)}
    for key, value in (("quota_class", quota_class), ("mode", mode), ("policy", policy),
                       ("project_name", project_name), ("domain_name", domain_name)):
        if value is not None:
            body[key] = value
    if weight:
        body["weights"] = {k: float(v) for k, v in parse_limits(weight).items()}
    emit_with_warnings(ctx, call(ctx, "PUT", f"/v1/quotas/{seg(project)}", body))


@app.command("delete")
def delete(ctx: typer.Context, project: str) -> None:
    """Stop managing PROJECT's global quota (site limits stay as written)."""
    call(ctx, "DELETE", f"/v1/quotas/{seg(project)}")


@app.command("usage")
def usage(ctx: typer.Context, project: str) -> None:
    """Global and per-site usage and limits of PROJECT, with each site's observed_at."""
    body = call(ctx, "GET", f"/v1/quotas/{seg(project)}/usage")
    if fmt(ctx) == "json":
        emit(body, fmt="json")
        return
    emit({"project": body["project_id"], "mode": body["mode"], "limits": body["limits"], "usage": body["usage"],
          "over_limit": body["over_limit"], "oldest_observation": body["oldest_observation"]}, fmt="table")
    emit(body["sites"], fmt="table", columns=SITE_COLUMNS)
    if body.get("unmapped_sites"):
        emit(body["unmapped_sites"], fmt="table", columns=UNMAPPED_COLUMNS)
    for warning in body.get("warnings") or []:
        typer.echo(f"WARNING: {warning}")


@app.command("sync")
def sync(ctx: typer.Context, project: str) -> None:
    """Rebalance PROJECT now (write what its last observations call for, collect again)."""
    emit_with_warnings(ctx, call(ctx, "POST", f"/v1/quotas/{seg(project)}/sync"))


@app.command("defaults")
def defaults(ctx: typer.Context, limit: Limit = None) -> None:
    """Show the default limits, or change them with --limit (admins)."""
    limits = parse_limits(limit)
    body = call(ctx, "PUT", "/v1/quotas/defaults", {"limits": limits}) if limits else \
        call(ctx, "GET", "/v1/quotas/defaults")
    emit(body, fmt=fmt(ctx))


@class_app.command("list")
def class_list(ctx: typer.Context) -> None:
    emit(call(ctx, "GET", "/v1/quota-classes")["classes"], fmt=fmt(ctx), columns=[("name", "NAME"),
                                                                                   ("limits", "LIMITS")])


@class_app.command("set")
def class_set(ctx: typer.Context, name: str, limit: Limit = None) -> None:
    """Create class NAME or merge limits into it (admins)."""
    emit(call(ctx, "PUT", f"/v1/quota-classes/{seg(name)}", {"limits": parse_limits(limit)}), fmt=fmt(ctx))


@class_app.command("delete")
def class_delete(ctx: typer.Context, name: str) -> None:
    call(ctx, "DELETE", f"/v1/quota-classes/{seg(name)}")


@project_app.command("mappings")
def mappings(ctx: typer.Context, project: str) -> None:
    """How PROJECT resolves on every site (explicit, shared-keystone or by-name)."""
    emit(call(ctx, "GET", f"/v1/projects/{seg(project)}/mappings")["mappings"], fmt=fmt(ctx),
         columns=[("site_name", "SITE"), ("source", "SOURCE"), ("remote_project_id", "REMOTE PROJECT")])


@project_app.command("map")
def map_(ctx: typer.Context, project: str, site: str, remote_project_id: str) -> None:
    """Record that PROJECT is REMOTE_PROJECT_ID on SITE (admins)."""
    emit(call(ctx, "PUT", f"/v1/projects/{seg(project)}/mappings/{seg(site)}",
              {"remote_project_id": remote_project_id}),
         fmt=fmt(ctx))


@project_app.command("unmap")
def unmap(ctx: typer.Context, project: str, site: str) -> None:
    call(ctx, "DELETE", f"/v1/projects/{seg(project)}/mappings/{seg(site)}")
