"""``skyfleet operation ...``: follow, cancel and retry fleet-wide operations, with live progress."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from skyfleet.cli.client import ApiClient, ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit, err_console

app = typer.Typer(help="Fleet-wide operations and their per-site tasks.", no_args_is_help=True)
COLUMNS = [("id", "ID"), ("kind", "KIND"), ("state", "STATE"), ("total", "SITES"),
           ("counts.succeeded", "OK"), ("counts.failed", "FAILED"), ("counts.pending", "PENDING"),
           ("counts.running", "RUNNING"), ("created_at", "CREATED")]
TASK_COLUMNS = [("site_name", "SITE"), ("state", "STATE"), ("attempts", "ATTEMPTS"),
                ("next_attempt_at", "NEXT ATTEMPT"), ("last_error", "LAST ERROR")]
FINAL = {"succeeded", "failed", "cancelled"}


def _call(c: Ctx, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return client_of(c).request(method, path, **kwargs)
    except ApiFailure as exc:
        fail(str(exc))


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Comma-separated kinds")] = None,
    state: Annotated[str | None, typer.Option(help="Comma-separated states")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = 50,
) -> None:
    """Operations, newest first."""
    c: Ctx = ctx.obj
    try:
        rows = client_of(c).pages("/v1/operations", "operations", limit=limit, kind=kind, state=state)
    except ApiFailure as exc:
        fail(str(exc))
    emit(rows, fmt=c.fmt, columns=COLUMNS)


def follow(client: ApiClient, operation_id: str, *, interval: float = 0.5) -> dict[str, Any]:
    """Show a progress bar until the operation is done; returns its final state."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task(operation_id[:8], total=None, failed=0)
        while True:
            op: dict[str, Any] = client.get(f"/v1/operations/{seg(operation_id)}")
            counts = op["counts"]
            done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
            bar.update(task, total=op["total"], completed=done, failed=counts["failed"],
                       description=f"{op['kind']} {op['state']}")
            if op["state"] in FINAL:
                return op
            time.sleep(interval)


@app.command("show")
def show(
    ctx: typer.Context, operation_id: str,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until it is done")] = False,
) -> None:
    """One operation with its per-site tasks."""
    c: Ctx = ctx.obj
    if wait:
        try:
            follow(client_of(c), operation_id)
        except ApiFailure as exc:
            fail(str(exc))
    op = _call(c, "GET", f"/v1/operations/{seg(operation_id)}")
    if c.fmt == "json":
        print(json.dumps(op, indent=2, default=str))
        return
    tasks = op.pop("tasks")
    emit(op, fmt=c.fmt)
    emit(tasks, fmt=c.fmt, columns=TASK_COLUMNS)


@app.command("cancel")
def cancel(ctx: typer.Context, operation_id: str) -> None:
    """Cancel the tasks that have not finished."""
    c: Ctx = ctx.obj
    emit(_call(c, "POST", f"/v1/operations/{seg(operation_id)}/cancel"), fmt=c.fmt)


@app.command("retry")
def retry(ctx: typer.Context, operation_id: str,
          wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """Run the failed tasks again."""
    c: Ctx = ctx.obj
    op = _call(c, "POST", f"/v1/operations/{seg(operation_id)}/retry")
    if wait:
        op = follow(client_of(c), operation_id)
    emit(op, fmt=c.fmt)


@app.command("run")
def run(
    ctx: typer.Context, kind: str,
    payload: Annotated[str, typer.Option(help="Payload as JSON")] = "{}",
    site: Annotated[list[str] | None, typer.Option("--site", help="Site name or id (repeatable)")] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-s", help="Label selector")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until it is done")] = True,
) -> None:
    """Run task kind KIND on some sites (all managed sites by default); admins only."""
    try:
        document = json.loads(payload)
    except ValueError as exc:
        raise typer.BadParameter(f"--payload is not JSON: {exc}") from exc
    body: dict[str, Any] = {"kind": kind, "payload": document}
    if site:
        body["sites"] = site
    if selector:
        body["selector"] = selector
    c: Ctx = ctx.obj
    op = _call(c, "POST", "/v1/operations", json=body)
    if wait:
        try:
            op = follow(client_of(c), op["id"])
        except ApiFailure as exc:
            fail(str(exc))
    emit(op, fmt=c.fmt)
    if op["state"] == "failed":
        raise typer.Exit(1)
