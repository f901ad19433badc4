"""``skyfleet inventory ...``: the global view from the command line (an HTTP client of /v1/inventory)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

app = typer.Typer(help="Every tenant resource on every site, from Skyfleet's inventory.", no_args_is_help=True)
COLUMNS = [("site", "SITE"), ("name", "NAME"), ("status", "STATUS"), ("project_id", "PROJECT"),
           ("ips", "IPS"), ("remote_id", "ID"), ("age_seconds", "AGE s"), ("stale", "STALE")]


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="servers, volumes, images, networks, subnets, ports, routers, "
                                             "floating_ips, security_groups, keypairs, flavors, hypervisors, "
                                             "availability_zones")],
    site: Annotated[str | None, typer.Option(help="Site id or name")] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-s", help="Site labels, e.g. tier=edge")] = None,
    project: Annotated[str | None, typer.Option(help="Project id")] = None,
    status: Annotated[str | None, typer.Option(help="Comma-separated, e.g. ACTIVE,ERROR")] = None,
    name: Annotated[str | None, typer.Option(help="Substring of the name")] = None,
    ip: Annotated[str | None, typer.Option(help="Exact IP address")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="A name substring, an id prefix or an "
                                               "exact IP address")] = None,
    updated_since: Annotated[str | None, typer.Option(help="ISO 8601 with zone")] = None,
    sort: Annotated[str, typer.Option(help="name, status, changed_at, site, project, id; -key descends")] = "id",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows (default: all)")] = None,
    live: Annotated[bool, typer.Option("--live", help="Read the one --site now instead of the store")] = False,
) -> None:
    """List inventory rows of one kind (all pages unless --limit)."""
    c: Ctx = ctx.obj
    params: dict[str, Any] = {"site": site, "selector": selector, "project": project, "status": status,
                              "name": name, "ip": ip, "q": search, "updated_since": updated_since, "sort": sort,
                              "live": "true" if live else None}
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    try:
        client = client_of(c)
        while offset is not None and (limit is None or len(rows) < limit):
            page_size = min(1000, limit - len(rows)) if limit else 1000
            body = client.get(f"/v1/inventory/{seg(kind)}", limit=page_size, offset=offset, **params)
            rows.extend(body["items"])
            offset = body.get("next_offset")
    except ApiFailure as exc:
        fail(str(exc))
    emit(rows, fmt=c.fmt, columns=COLUMNS)


@app.command("summary")
def summary(ctx: typer.Context) -> None:
    """Counts per kind and status, fleet-wide and per site; capacity and utilization (admins)."""
    c: Ctx = ctx.obj
    try:
        body = client_of(c).get("/v1/inventory/summary")
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(body, fmt="json")
        return
    emit([{"kind": kind, **{"counts": ", ".join(f"{s}={n}" for s, n in sorted(by.items()))}}
          for kind, by in sorted(body["totals"].items())], fmt="table",
         columns=[("kind", "KIND"), ("counts", "STATUS=COUNT")])
    emit([{"site": s["site"], "availability": s["availability"], "stale": s["stale"],
           "servers": sum((s["counts"].get("servers") or {}).values()),
           "vcpus": f"{(s['capacity'] or {}).get('vcpus_used', '-')}/{(s['capacity'] or {}).get('vcpus', '-')}",
           "refreshed_at": s["refreshed_at"]} for s in body["sites"]], fmt="table",
         columns=[("site", "SITE"), ("availability", "AVAILABILITY"), ("stale", "STALE"), ("servers", "SERVERS"),
                  ("vcpus", "VCPUS used/total"), ("refreshed_at", "REFRESHED")])


@app.command("refresh")
def refresh(ctx: typer.Context, full: Annotated[bool, typer.Option("--full", help="Every kind")] = False) -> None:
    """Make the inventory refresh due now (admins); the periodic job runs it."""
    c: Ctx = ctx.obj
    try:
        emit(client_of(c).request("POST", "/v1/inventory/refresh", params={"full": full}), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))
