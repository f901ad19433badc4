"""Render API results as readable tables (default) or JSON (``--format json``).

On a terminal a table fits the terminal's width; piped to a file or another program it is printed at
its full width (rich would otherwise fold every row at 80 columns), one row per line."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error is one line, however long
PIPED_WIDTH = 10_000  # no fold when the output is not a terminal: a table takes the width its cells need


def show(renderable: Any) -> None:
    """Print a table: the terminal's width, or, when piped, as wide as its cells need."""
    if console.is_terminal:
        console.print(renderable)
    else:  # a console of the moment: the current standard output (a test's, a pipe's), never folded
        Console(file=sys.stdout, width=PIPED_WIDTH, color_system=None).print(renderable)


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
        show(table)
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, _cell(value))
    show(table)


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
