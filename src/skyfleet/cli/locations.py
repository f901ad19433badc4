"""``skyfleet locations``: where the caller can boot (an HTTP client of /v1/locations).

The table shows one line per site (zones, free room, quota headroom, how many flavors and images are
usable there); ``--format json`` has every flavor and image.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

# FREE: vCPU/RAM MiB/disk GB; QUOTA: instances/cores/RAM MiB left ("-": no limit known); IMAGES: * copied on use
COLUMNS = [("name", "SITE"), ("availability", "HEALTH"), ("zones", "ZONES"), ("free", "FREE"), ("quota", "QUOTA"),
           ("flavors", "FLAVORS"), ("images", "IMAGES")]


def _row(loc: dict[str, Any]) -> dict[str, Any]:
    free = loc.get("free")
    quota = loc.get("quota_headroom") or {}
    shown = ["-" if quota.get(k) is None else str(quota[k]) for k in ("instances", "cores", "ram")]
    return {"name": loc["name"], "availability": loc["availability"], "group": loc.get("group"),
            "zones": ",".join(loc.get("availability_zones") or []),
            "free": f"{free['vcpus']}/{free['ram_mb']}/{free['disk_gb']}" if free else "unknown",
            "quota": "/".join(shown), "flavors": ",".join(f["name"] for f in loc.get("flavors") or []),
            "images": ",".join(i["name"] + ("*" if i["image"] == "copy" else "") for i in loc.get("images") or [])}


def locations(
    ctx: typer.Context,
    selector: Annotated[str | None, typer.Option("--selector", "-s", help="Site labels, e.g. tier=edge")] = None,
    group: Annotated[str | None, typer.Option(help="Site group")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many sites (default: all)")] = None,
) -> None:
    """The sites you may boot in, with zones, room, your quota headroom, flavors and images.

    FREE is vCPU/RAM MiB/disk GB; QUOTA is instances/cores/RAM MiB you may still use there ("-": no
    limit known); an image marked * is copied to the site before a boot."""
    c: Ctx = ctx.obj
    try:
        rows = client_of(c).pages("/v1/locations", "locations", limit=limit, selector=selector, group=group)
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(rows, fmt="json")
        return
    emit([_row(r) for r in rows], fmt="table", columns=COLUMNS)
