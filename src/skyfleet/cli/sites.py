"""``skyfleet site ...``: manage the site registry through the API."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from skyfleet.cli.client import ApiFailure, seg
from skyfleet.cli.cloudsyaml import CloudsYamlError, load_clouds, site_body
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit, err_console

app = typer.Typer(help="Register and manage sites.", no_args_is_help=True)
COLUMNS = [("name", "NAME"), ("availability", "AVAILABILITY"), ("managed", "MANAGED"), ("group", "GROUP"),
           ("labels", "LABELS"), ("latency_ms", "LATENCY ms"), ("last_error", "LAST ERROR")]


def parse_labels(values: list[str] | None) -> dict[str, str]:
    labels = {}
    for item in values or []:
        if "=" not in item:
            raise typer.BadParameter(f"label {item!r} must be key=value")
        key, value = item.split("=", 1)
        labels[key.strip()] = value.strip()
    return labels


Labels = Annotated[list[str] | None, typer.Option("--label", "-l", help="key=value (repeatable)")]


@app.command("add")
def add(
    ctx: typer.Context, name: str,
    auth_url: Annotated[str, typer.Option(help="Keystone v3 URL")],
    username: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str | None, typer.Option(envvar="SKYFLEET_SITE_PASSWORD")] = None,
    project_name: Annotated[str | None, typer.Option()] = None,
    user_domain_name: Annotated[str, typer.Option()] = "Default",
    project_domain_name: Annotated[str, typer.Option()] = "Default",
    application_credential_id: Annotated[str | None, typer.Option()] = None,
    application_credential_secret: Annotated[str | None, typer.Option(envvar="SKYFLEET_SITE_APP_CRED_SECRET")] = None,
    region_name: Annotated[str | None, typer.Option()] = None,
    interface: Annotated[str, typer.Option()] = "public",
    label: Labels = None,
    group: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str, typer.Option()] = "",
    latitude: Annotated[float | None, typer.Option()] = None,
    longitude: Annotated[float | None, typer.Option()] = None,
) -> None:
    """Register one site."""
    auth: dict[str, Any] = {"auth_url": auth_url, "interface": interface}
    for key, value in (("username", username), ("password", password), ("project_name", project_name),
                       ("application_credential_id", application_credential_id),
                       ("application_credential_secret", application_credential_secret),
                       ("region_name", region_name)):
        if value:
            auth[key] = value
    if not application_credential_id:
        auth.update(user_domain_name=user_domain_name, project_domain_name=project_domain_name)
    body: dict[str, Any] = {"name": name, "auth": auth, "labels": parse_labels(label), "description": description}
    if group:
        body["group"] = group
    if latitude is not None and longitude is not None:
        body["location"] = {"latitude": latitude, "longitude": longitude}
    c: Ctx = ctx.obj
    try:
        emit(client_of(c).request("POST", "/v1/sites", json=body), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))


@app.command("import")
def import_(
    ctx: typer.Context, clouds_yaml: Path,
    cloud: Annotated[list[str] | None, typer.Option("--cloud", help="Only these clouds (repeatable)")] = None,
    label: Labels = None,
    group: Annotated[str | None, typer.Option()] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
) -> None:
    """Register many sites from a clouds.yaml; existing names are reported and skipped."""
    c: Ctx = ctx.obj
    try:
        clouds = load_clouds(clouds_yaml)
    except CloudsYamlError as exc:
        fail(str(exc))
    chosen = cloud or sorted(clouds)
    missing = [name for name in chosen if name not in clouds]
    if missing:
        fail(f"not in {clouds_yaml}: {', '.join(missing)}")
    labels = parse_labels(label)
    client = client_of(c)
    results: list[dict[str, Any]] = []

    def register(name: str) -> dict[str, Any]:
        body = site_body(name, clouds[name], labels=labels, group=group)
        try:
            site = client.request("POST", "/v1/sites", json=body)
            return {"cloud": name, "result": "registered", "availability": site["availability"],
                    "detail": site.get("last_error") or ""}
        except ApiFailure as exc:
            outcome = "exists" if exc.status == 409 else "failed"
            return {"cloud": name, "result": outcome, "availability": "", "detail": str(exc)}

    with Progress(console=err_console, transient=True) as progress, ThreadPoolExecutor(concurrency) as pool:
        task = progress.add_task("registering sites", total=len(chosen))
        for result in pool.map(register, chosen):
            results.append(result)
            progress.advance(task)
    emit(results, fmt=c.fmt)
    if any(r["result"] == "failed" for r in results):
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    selector: Annotated[str | None, typer.Option("--selector", "-s", help="e.g. tier=edge,country!=fr")] = None,
    group: Annotated[str | None, typer.Option()] = None,
    availability: Annotated[str | None, typer.Option(help="online,degraded,offline,unknown")] = None,
    name: Annotated[str | None, typer.Option(help="substring of the name")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """List sites (all pages unless --limit)."""
    c: Ctx = ctx.obj
    try:
        rows = client_of(c).pages("/v1/sites", "sites", limit=limit, selector=selector, group=group,
                                  availability=availability, name=name)
    except ApiFailure as exc:
        fail(str(exc))
    emit(rows, fmt=c.fmt, columns=COLUMNS)


@app.command("show")
def show(ctx: typer.Context, site: str) -> None:
    """Show one site (id or name)."""
    c: Ctx = ctx.obj
    try:
        emit(client_of(c).get(f"/v1/sites/{seg(site)}"), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))


@app.command("update")
def update(
    ctx: typer.Context, site: str,
    label: Labels = None,
    group: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    new_name: Annotated[str | None, typer.Option("--name")] = None,
    auth_json: Annotated[str | None, typer.Option(help="Replacement auth as JSON")] = None,
) -> None:
    """Change a site's labels (replaces them), group, description, name or auth."""
    body: dict[str, Any] = {}
    if label is not None:
        body["labels"] = parse_labels(label)
    for key, value in (("group", group), ("description", description), ("name", new_name)):
        if value is not None:
            body[key] = value
    if auth_json:
        try:
            body["auth"] = json.loads(auth_json)
        except ValueError as exc:
            raise typer.BadParameter(f"--auth-json is not JSON: {exc}") from exc
    c: Ctx = ctx.obj
    try:
        emit(client_of(c).request("PATCH", f"/v1/sites/{seg(site)}", json=body), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))


def _simple(ctx: typer.Context, method: str, path: str, message: str) -> None:
    c: Ctx = ctx.obj
    try:
        result = client_of(c).request(method, path)
    except ApiFailure as exc:
        fail(str(exc))
    if result is not None:
        emit(result, fmt=c.fmt)
    else:
        err_console.print(message)


@app.command("delete")
def delete(ctx: typer.Context, site: str) -> None:
    """Remove a site from Skyfleet (nothing is changed in the site)."""
    _simple(ctx, "DELETE", f"/v1/sites/{seg(site)}", f"site {site} deleted")


@app.command("manage")
def manage(ctx: typer.Context, site: str) -> None:
    """Send work to the site again."""
    _simple(ctx, "POST", f"/v1/sites/{seg(site)}/manage", "")


@app.command("unmanage")
def unmanage(ctx: typer.Context, site: str) -> None:
    """Send no work to the site; it stays registered."""
    _simple(ctx, "POST", f"/v1/sites/{seg(site)}/unmanage", "")


