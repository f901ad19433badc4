"""Options shared by every client command (URL, token, output format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import typer

from skyfleet.cli.client import ApiClient, ApiFailure, resolve_token
from skyfleet.cli.output import err_console


@dataclass
class Ctx:
    url: str | None
    token: str | None
    os_cloud: str | None
    fmt: str


def client_of(c: Ctx) -> ApiClient:
    try:
        token = resolve_token(c.token, c.os_cloud)
    except ApiFailure as exc:
        fail(str(exc))
    return ApiClient(c.url, token)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
