"""``skyfleet indicators``: per-site series (capacity, API health, audit time) and per-project quota usage
from /v1/indicators.

Why it exists: an operator at a terminal asks "how full is paris-1, and since when is its Nova slow"
without a Grafana; one line per series (latest, min, mean, max over the range, and a sparkline of
block characters for its shape) answers it, and ``--format json`` gives the points themselves.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

app = typer.Typer(help="Per-site indicators (fleet admins) and per-project quota usage, kept as time series.",
                  invoke_without_command=True)
COLUMNS = [("site", "SITE"), ("project", "PROJECT"), ("name", "NAME"), ("trend", "TREND"), ("latest", "LATEST"),
           ("min", "MIN"), ("mean", "MEAN"), ("max", "MAX"), ("unit", "UNIT"), ("points", "POINTS"),
           ("at", "LATEST AT")]
BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16


def spark(values: list[float], width: int = SPARK_WIDTH) -> str:
    """The shape of ``values`` (oldest first) in at most ``width`` block characters, lowest ▁ to highest █;
    more values than that are averaged into ``width`` runs. A flat series is a row of ▄."""
    if not values:
        return ""
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in pairwise(edges) if b > a]
    low, high = min(values), max(values)
    if high == low:
        return BLOCKS[3] * len(values)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - low) / (high - low) * top)] for v in values)


def summarize(series: dict[str, Any]) -> dict[str, Any]:
    """One table row of a series: its latest value and the spread over the range."""
    values = [float(v) for _, v in series["points"]]
    row: dict[str, Any] = {"site": series.get("site") or "", "project": series.get("project_id") or "",
                           "name": series["name"], "unit": series["unit"],
                           "points": len(values), "trend": spark(values)}
    if values:
        row.update(latest=values[-1], min=min(values), max=max(values),
                   mean=round(sum(values) / len(values), 3), at=series["points"][-1][0])
    return row


@app.callback()
def indicators(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Comma-separated site names or ids (default: every site)")] = None,
    name: Annotated[str | None, typer.Option(help="Comma-separated names or prefixes, e.g. capacity.*,api.compute.*"
                                             )] = None,
    since: Annotated[str, typer.Option(help="A duration before now (1h, 30m, 7d) or ISO 8601 with zone")] = "1h",
    until: Annotated[str | None, typer.Option(help="Same forms as --since (default: now)")] = None,
    step: Annotated[str | None, typer.Option(help="Average into buckets this wide (5m, 1h, seconds)")] = None,
    project: Annotated[str | None, typer.Option(help="Comma-separated project ids: their quota.* series (a "
                                                "tenant: its own project, the default)")] = None,
) -> None:
    """One line per site and indicator over the range: its trend (a sparkline), latest, min, mean, max."""
    if ctx.invoked_subcommand is not None:
        return
    c: Ctx = ctx.obj
    try:
        body = client_of(c).get("/v1/indicators", site=site, name=name, since=since, until=until, step=step,
                                project=project)
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(body, fmt="json")
        return
    emit([summarize(s) for s in body["series"]], fmt="table", columns=COLUMNS)


@app.command("names")
def names(ctx: typer.Context) -> None:
    """Every indicator, its unit, and how many sites have a recent sample of it."""
    c: Ctx = ctx.obj
    try:
        body = client_of(c).get("/v1/indicators/names")
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(body, fmt="json")
        return
    emit(body["names"], fmt="table", columns=[("name", "NAME"), ("unit", "UNIT"), ("sites", "SITES"),
                                              ("latest", "LATEST"), ("description", "DESCRIPTION")])
