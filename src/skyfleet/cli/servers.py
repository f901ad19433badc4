"""``skyfleet server create|list|show|delete|start|stop|reboot``: boot where you choose or where
placement says, and follow each server to ACTIVE (or to the reason no site took it).

``create --wait`` polls every server of the request once a second, as a user would, printing each
change (site, attempts with the site's refusal) until every one is active or failed; with a count
above one it shows how many are done. ``--dry-run`` prints the ranked candidates and why each
excluded site was excluded, and boots nothing.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import console, emit

app = typer.Typer(help="Servers booted through Skyfleet.", no_args_is_help=True)
COLUMNS = [("id", "ID"), ("name", "NAME"), ("status", "STATUS"), ("site", "SITE"),
           ("availability_zone", "AZ"), ("error", "ERROR")]
CANDIDATE_COLUMNS = [("site_name", "SITE"), ("availability_zone", "AZ"), ("score", "SCORE"), ("image", "IMAGE"),
                     ("reasons", "WHY")]
EXCLUDED_COLUMNS = [("site_name", "SITE"), ("reasons", "EXCLUDED BECAUSE")]
SETTLED = ("active", "failed", "deleted")


def _call(ctx: typer.Context, method: str, path: str, **kwargs: Any) -> Any:
    c: Ctx = ctx.obj
    try:
        return client_of(c).request(method, path, **kwargs)
    except ApiFailure as exc:
        fail(str(exc))


def _meta(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--meta {item!r}: give key=value")
        out[key] = value
    return out


@app.command("create")
def create(ctx: typer.Context, name: str,
           flavor: Annotated[str, typer.Option(help="Flavor name")],
           image: Annotated[str, typer.Option(help="A declared image (id or name), else an image name on the site")],
           site: Annotated[str | None, typer.Option(help="Boot on this site (explicit)")] = None,
           az: Annotated[str | None, typer.Option("--az", help="Availability zone of the explicit site")] = None,
           policy: Annotated[str | None, typer.Option(help="pack, spread, nearest or weighted")] = None,
           selector: Annotated[str | None, typer.Option(help="Candidate sites by label selector")] = None,
           group: Annotated[str | None, typer.Option(help="Candidate sites of a group")] = None,
           min_sites: Annotated[int, typer.Option(help="spread: at least this many sites")] = 1,
           allow_spill: Annotated[bool, typer.Option(help="An explicit site may spill to others")] = False,
           network: Annotated[list[str] | None, typer.Option(help="Network name (repeatable)")] = None,
           keypair: Annotated[str | None, typer.Option(help="Keypair name")] = None,
           security_group: Annotated[list[str] | None, typer.Option(help="Security group (repeatable)")] = None,
           meta: Annotated[list[str] | None, typer.Option(help="Metadata key=value (repeatable)")] = None,
           count: Annotated[int, typer.Option(min=1, max=100)] = 1,
           dry_run: Annotated[bool, typer.Option(help="Rank the candidates; boot nothing")] = False,
           idempotency_key: Annotated[str | None, typer.Option(help="Retries with the same key boot once")] = None,
           wait: Annotated[bool, typer.Option(help="Follow every server until active or failed")] = False,
           timeout: Annotated[float, typer.Option(help="--wait gives up after this many seconds")] = 900) -> None:
    """Boot COUNT servers; answers at once unless --wait."""
    c: Ctx = ctx.obj
    where: dict[str, Any] = {k: v for k, v in {"site": site, "availability_zone": az, "policy": policy,
                                                  "selector": selector, "group": group}.items() if v}
    if min_sites != 1:
        where["min_sites"] = min_sites
    if allow_spill:
        where["allow_spill"] = True
    body = {"name": name, "flavor": flavor, "image": image, "networks": network or [], "keypair": keypair,
            "security_groups": security_group or [], "metadata": _meta(meta), "count": count, "placement": where}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    answer = _call(ctx, "POST", "/v1/servers", json={k: v for k, v in body.items() if v is not None},
                   params={"dry_run": "true"} if dry_run else None, headers=headers)
    if dry_run:
        plan = answer["plan"]
        if c.fmt == "json":
            emit(plan, fmt="json")
            return
        emit(plan["candidates"], fmt=c.fmt, columns=CANDIDATE_COLUMNS)
        if plan["excluded"]:
            emit(plan["excluded"], fmt=c.fmt, columns=EXCLUDED_COLUMNS)
        return
    rows = answer["servers"]
    if not wait:
        emit(rows, fmt=c.fmt, columns=COLUMNS)
        return
    _follow(ctx, [r["id"] for r in rows], timeout)


def _follow(ctx: typer.Context, ids: list[str], timeout: float) -> None:
    c: Ctx = ctx.obj
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple[str, int]] = {}
    while True:
        rows = [_call(ctx, "GET", f"/v1/servers/{seg(sid)}") for sid in ids]
        for row in rows:
            state = (row["status"], len(row["attempts"]))
            if seen.get(row["id"]) != state:
                seen[row["id"]] = state
                last = row["attempts"][-1] if row["attempts"] else None
                refused = f" (refused by {last['site_name']}: {last['error']})" if last and state[1] else ""
                console.print(f"{row['name']}: {row['status']} on {row['site'] or '-'}{refused}")
        done = sum(r["status"] in SETTLED for r in rows)
        if done == len(rows):
            break
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:g} s: {done} of {len(rows)} server(s) settled")
        time.sleep(1)
    emit(rows, fmt=c.fmt, columns=COLUMNS)
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        fail("; ".join(f"{r['name']}: {r['error']}" for r in failed))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Servers booted through Skyfleet, with where they are."""
    c: Ctx = ctx.obj
    emit(_call(ctx, "GET", "/v1/servers", params={"limit": 1000})["servers"], fmt=c.fmt, columns=COLUMNS)


@app.command("show")
def show(ctx: typer.Context, server_id: str) -> None:
    """One server: where it is and every attempt with the site's answer."""
    c: Ctx = ctx.obj
    emit(_call(ctx, "GET", f"/v1/servers/{seg(server_id)}"), fmt=c.fmt)


@app.command("delete")
def delete(ctx: typer.Context, server_id: str,
           wait: Annotated[bool, typer.Option(help="Wait until it is gone from its site")] = False) -> None:
    """Delete the server on its site."""
    c: Ctx = ctx.obj
    row = _call(ctx, "DELETE", f"/v1/servers/{seg(server_id)}")
    while wait and row["status"] not in ("deleted", "active"):
        time.sleep(1)
        row = _call(ctx, "GET", f"/v1/servers/{seg(server_id)}")
    emit(row, fmt=c.fmt)


def _action(verb: str) -> Any:
    def run(ctx: typer.Context, server_id: str) -> None:
        c: Ctx = ctx.obj
        emit(_call(ctx, "POST", f"/v1/servers/{seg(server_id)}/action", json={"action": verb}), fmt=c.fmt)
    run.__doc__ = f"{verb.capitalize()} the server on its site."
    return run


for _verb in ("start", "stop", "reboot"):
    app.command(_verb)(_action(_verb))
