"""Entry point of the ``skyfleet`` command."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from skyfleet.cli import addresses, indicators, inventory, networks, operations, pools, sites
from skyfleet.cli import identity as identity_cli
from skyfleet.cli import images as images_cli
from skyfleet.cli import locations as locations_cli
from skyfleet.cli import quota as quota_cli
from skyfleet.cli import servers as server_cli
from skyfleet.cli import sync as sync_cli
from skyfleet.cli.client import ApiFailure
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import console, emit, err_console
from skyfleet.config import Settings, is_loopback

app = typer.Typer(help="Skyfleet: one control point for a fleet of OpenStack clouds.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of stored site credentials.", no_args_is_help=True)
app.add_typer(sites.app, name="site")
app.add_typer(operations.app, name="operation")
app.add_typer(inventory.app, name="inventory")
app.add_typer(indicators.app, name="indicators")
app.add_typer(addresses.app, name="address")
app.add_typer(addresses.domain_app, name="routing-domain")
app.add_typer(pools.app, name="pool")
app.add_typer(networks.app, name="network")
app.add_typer(quota_cli.app, name="quota")
app.add_typer(quota_cli.project_app, name="project")
app.add_typer(sync_cli.keypair_app, name="keypair")
app.add_typer(sync_cli.flavor_app, name="flavor")
app.add_typer(sync_cli.security_group_app, name="security-group")
app.add_typer(images_cli.app, name="image")
app.add_typer(identity_cli.domain_app, name="domain")
app.add_typer(identity_cli.user_app, name="user")
app.add_typer(identity_cli.group_app, name="group")
app.add_typer(identity_cli.role_assignment_app, name="role-assignment")
app.add_typer(server_cli.app, name="server")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.command("locations")(locations_cli.locations)


@app.callback()
def _common(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(envvar="SKYFLEET_URL", help="API URL")] = None,
    token: Annotated[str | None, typer.Option(help="Keystone token (or SKYFLEET_TOKEN)")] = None,
    os_cloud: Annotated[str | None, typer.Option("--os-cloud", help="clouds.yaml cloud to get a token")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    ctx.obj = Ctx(url=url, token=token, os_cloud=os_cloud, fmt=fmt)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        fail(f"invalid configuration: {problems}", code=2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080)")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default SQLite in data dir)")] = None,
    noauth: Annotated[bool, typer.Option("--noauth", help="No authentication: local use only")] = False,
    no_workers: Annotated[bool, typer.Option("--no-workers", help="API only, no periodic workers")] = False,
) -> None:
    """Run the API with its in-process workers."""
    settings = load_settings(host=host, port=port, database_url=db,
                             auth_mode="noauth" if noauth else None,
                             workers_enabled=False if no_workers else None)
    if settings.auth_mode == "noauth" and not is_loopback(settings.host):
        fail(f"--noauth refuses to bind to {settings.host}: only loopback addresses are allowed", code=2)
    from skyfleet.cli.server import run_server

    run_server(settings)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, max=4096, help="Tasks run at once")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (PostgreSQL in production)")] = None,
    broker: Annotated[str | None, typer.Option(help="Broker URL that wakes workers (amqp:// or redis://)")]
    = None,
    no_periodic: Annotated[bool, typer.Option("--no-periodic", help="Only tasks: leave the periodic jobs "
                                              "(audits, refreshes, quota rounds) to other processes")] = False,
    metrics_port: Annotated[int | None, typer.Option(min=1, max=65535, help="Serve this worker's Prometheus "
                                                     "metrics on this port (GET /metrics)")] = None,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics port (no authentication: keep it "
                                              "on loopback or a private network)")] = "127.0.0.1",
) -> None:
    """Run reconcile workers only (no API): lease tasks from the database and converge sites."""
    settings = load_settings(database_url=db, broker_url=broker, auth_mode="noauth",
                             periodic_jobs=False if no_periodic else None)
    from skyfleet.cli.worker import run_worker

    run_worker(settings, concurrency=concurrency, metrics_port=metrics_port, metrics_host=metrics_host)


@app.command()
def demo(
    sites_count: Annotated[int, typer.Option("--sites", min=1, max=10_000)] = 8,
    port: Annotated[int, typer.Option()] = 8080,
    sim_port: Annotated[int, typer.Option(help="Port of the simulated sites")] = 8790,
    data_dir: Annotated[Path, typer.Option()] = Path("var/demo"),
    audit_interval: Annotated[float, typer.Option(min=1)] = 10.0,
) -> None:
    """Start Skyfleet (SQLite, in-process workers) with a fleet of simulated sites."""
    from skyfleet.cli.demo import run_demo

    # the environment's settings are checked before any simulated site starts: a bad one is a clear error
    load_settings(auth_mode="noauth", data_dir=data_dir, port=port, audit_interval=audit_interval)
    run_demo(site_count=sites_count, port=port, sim_port=sim_port, data_dir=data_dir, audit_interval=audit_interval)


@app.command()
def events(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Site id or name")] = None,
    kind: Annotated[str | None, typer.Option(help="Comma-separated kinds")] = None,
    since: Annotated[datetime | None, typer.Option(help="ISO 8601 (UTC if no zone)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    follow: Annotated[bool, typer.Option("--follow", help="Print new events as they happen (oldest first), "
                                         "reconnecting after a dropped connection; Ctrl-C stops")] = False,
    follow_for: Annotated[float | None, typer.Option("--for", min=0.1, help="With --follow: stop after this many "
                                                     "seconds")] = None,
) -> None:
    """Recent events, newest first; or, with --follow, new events as they happen."""
    c: Ctx = ctx.obj
    since_text = None
    if since is not None:
        since_text = (since if since.tzinfo else since.astimezone()).isoformat()
    if follow:
        _follow_events(c, {"site": site, "kind": kind, "since": since_text}, follow_for)
        return
    try:
        rows = client_of(c).get("/v1/events", site=site, kind=kind, since=since_text, limit=limit)["events"]
    except ApiFailure as exc:
        fail(str(exc))
    emit(rows, fmt=c.fmt, columns=[("id", "ID"), ("created_at", "AT"), ("severity", "SEVERITY"),
                                   ("kind", "KIND"), ("site_name", "SITE"), ("message", "MESSAGE")])


def _follow_events(c: Ctx, params: dict[str, str | None], seconds: float | None) -> None:
    import json

    from skyfleet.cli.follow import follow
    from skyfleet.cli.output import err_console

    def show(event: dict[str, Any]) -> None:
        if c.fmt == "json":
            print(json.dumps(event, default=str), flush=True)  # one object per line
        else:
            print("\t".join(str(event.get(k) or "-") for k in ("id", "created_at", "severity", "kind", "site_name",
                                                                "message")), flush=True)

    # A token of --os-cloud / OS_* expires while following: get a new one. A given token cannot be renewed.
    fixed = bool(c.token or os.environ.get("SKYFLEET_TOKEN"))
    try:
        follow(client_of(c), params, on_event=show, seconds=seconds, renew=None if fixed else lambda: client_of(c),
               notice=lambda text: err_console.print(f"[yellow]{text}[/yellow]", soft_wrap=True))
    except ApiFailure as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@db_app.command("upgrade")
def db_upgrade(db: Annotated[str | None, typer.Option("--db")] = None,
               revision: Annotated[str, typer.Option()] = "heads") -> None:
    """Apply database migrations."""
    from skyfleet.db import migrate

    settings = load_settings(database_url=db, auth_mode="noauth")
    migrate.upgrade(settings.effective_database_url, revision)
    console.print(f"database at revision {revision}")


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration and show it (secrets masked)."""
    settings = load_settings()
    from skyfleet.secrets import KeyError_, load_keys

    try:
        keys = load_keys(settings, create=False)
        key_state = f"{len(keys)} key(s) from {'SKYFLEET_SECRET_KEYS' if settings.secret_keys else settings.key_file}"
    except KeyError_ as exc:
        key_state = f"not ready: {exc} (generated on first start)"
    from skyfleet.cli.config_view import masked_settings

    shown = masked_settings(settings)
    shown["keys"] = key_state
    emit(shown, fmt=ctx.obj.fmt if isinstance(ctx.obj, Ctx) else "table")
    console.print("[green]configuration is valid[/green]")


@keys_app.command("rotate")
def keys_rotate(
    new_key: Annotated[bool, typer.Option(help="Generate a new primary key in the key file first")] = True,
    drop_old: Annotated[bool, typer.Option(help="Remove old keys from the key file afterwards")] = False,
) -> None:
    """Re-encrypt every stored credential with a new primary key."""
    from skyfleet.db import migrate
    from skyfleet.db.engine import make_engine, make_session_factory, transaction
    from skyfleet.domains.sites.service import reencrypt_all
    from skyfleet.secrets import KeyError_, SecretBox, add_key_to_file, drop_old_keys, load_keys

    settings = load_settings(auth_mode="noauth")
    try:
        if new_key:
            add_key_to_file(settings)
        box = SecretBox(load_keys(settings, create=False))
        migrate.upgrade(settings.effective_database_url)
        engine = make_engine(settings.effective_database_url)
        with transaction(make_session_factory(engine)) as session:
            count = reencrypt_all(session, box=box)
        engine.dispose()
        dropped = drop_old_keys(settings) if drop_old else 0
    except KeyError_ as exc:
        fail(str(exc))
    console.print(f"re-encrypted {count} site credential(s); dropped {dropped} old key(s)")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key (for SKYFLEET_SECRET_KEYS)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())


GLOBAL_VALUE_OPTIONS = {"--url", "--token", "--os-cloud", "--format", "-f"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Let global options (``--format json``, ``--url``...) appear after the subcommand too.

    Typer only accepts group options before the subcommand; users type them at the end.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS and "=" in arg:
            front.append(arg)
        elif name in GLOBAL_VALUE_OPTIONS and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    """The ``skyfleet`` command. A file a command was told to read that cannot be read or parsed is one
    line with the reason and exit status 2, never a traceback."""
    import json
    import sys

    try:
        app(args=hoist_global_options(sys.argv[1:]), prog_name="skyfleet")
    except OSError as exc:  # --public-key, --spec-file, --psk-file, clouds.yaml ...
        err_console.print(f"[red]error:[/red] cannot read {exc.filename or 'a file'}: {exc.strerror or exc}")
        sys.exit(2)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]error:[/red] a file given to the command is not valid: {exc}")
        sys.exit(2)
