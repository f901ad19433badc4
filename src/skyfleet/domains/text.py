"""The characters a name, a label or a description may hold, checked in one place for every schema.

Why it exists: names and labels end up in SQL, in logs, in terminals, in the web UI and in the sites
themselves. A NUL breaks PostgreSQL and C tools; bidi overrides and isolates (U+202A..U+202E,
U+2066..U+2069) make a name display as another one; other C0/C1 controls forge log lines and drive
terminals; a lone surrogate cannot even be encoded. Every request schema that takes free text uses
:data:`Name` (one line, no control or format character) or :data:`Text` (may span lines), so the
rule cannot drift between fields, and the 422 names the field.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}
LINE_BREAKS = frozenset("\t\n\r")


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """A description of the first character ``value`` may not hold, or None when it is clean."""
    for position, char in enumerate(value):
        if multiline and char in LINE_BREAKS:
            continue
        code = ord(char)
        category = unicodedata.category(char)
        if code in BIDI_CONTROLS:
            why = "a bidirectional control character"
        elif category == "Cc":
            why = "a control character"
        elif category == "Cs":
            why = "a lone surrogate"
        elif category in ("Zl", "Zp") or (category == "Cf" and not multiline):
            why = "a line separator or invisible format character"
        else:
            continue
        return f"U+{code:04X} at position {position} is {why}"
    return None


def _check_name(value: str) -> str:
    problem = forbidden_character(value)
    if problem:
        raise ValueError(f"not allowed in a name: {problem}")
    return value


def _check_text(value: str) -> str:
    problem = forbidden_character(value, multiline=True)
    if problem:
        raise ValueError(f"not allowed in text: {problem}")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
"""One line of printable text: names, label keys and values, group and class names, references."""

Text = Annotated[str, AfterValidator(_check_text)]
"""Printable text that may span lines (tab, LF and CR allowed): descriptions."""

ShortName = Annotated[Name, Field(min_length=1, max_length=255)]
"""A non-empty name of at most 255 characters (OpenStack's usual name column)."""
