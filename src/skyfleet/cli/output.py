"""Render API results as readable tables (default) or JSON (``--format json``)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit(data: Any, *, fmt: str, columns: list[tuple[str, str]] | None = None) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, list):
        table = Table(show_lines=False)
        cols = columns or [(k, k) for k in (data[0].keys() if data else [])]
        for _, title in cols:
            table.add_column(title, overflow="fold")
        for row in data:
            table.add_row(*[_short(_cell(_dig(row, key))) for key, _ in cols])
        console.print(table)
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, _cell(value))
    console.print(table)


def _short(text: str, width: int = 60) -> str:
    """Keep table rows to one line; the JSON output has the full text."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dig(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) if all(
            not isinstance(v, dict | list) for v in value.values()) else json.dumps(value, default=str)
    if isinstance(value, list):
        return json.dumps(value, default=str)
    return str(value)
