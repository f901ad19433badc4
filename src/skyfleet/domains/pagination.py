"""Markers of paginated lists, decided in one place for every list that takes ``marker``.

Why it exists: each list used to treat its marker its own way (one 500 on an out-of-range integer,
one silently starting anywhere on an unknown id). The rule, the same everywhere (docs/api.md):
an empty marker is the first page; a malformed one (too long, control characters, not a number
where ids are numbers, out of the 64-bit range) is 400 with the reason; a well-formed marker that
names no row the caller can see is 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from skyfleet.domains.text import forbidden_character
from skyfleet.errors import Invalid, NotFound

MAX_MARKER_LENGTH = 255
MAX_INT_MARKER = 2**63 - 1


def text_marker(raw: str | None) -> str | None:
    """The marker as text (a name or an id), None for the first page; :class:`Invalid` when malformed."""
    if not raw:
        return None
    if len(raw) > MAX_MARKER_LENGTH:
        raise Invalid(f"marker: at most {MAX_MARKER_LENGTH} characters, got {len(raw)}")
    problem = forbidden_character(raw)
    if problem:
        raise Invalid(f"marker: {problem}")
    return raw


def int_marker(raw: str | int | None) -> int | None:
    """The marker as a positive 64-bit id, None for the first page; :class:`Invalid` otherwise."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 1 <= int(text) <= MAX_INT_MARKER:
        shown = text[:40]
        raise Invalid(f"marker: must be an integer id from 1 to {MAX_INT_MARKER}, got {shown!r}")
    return int(text)


def find_marker(session: Session, query: Select[Any], marker: Any, noun: str) -> Any:
    """The row (or value) ``query`` selects for a marker; :class:`NotFound` naming the marker when none."""
    found = session.execute(query.limit(1)).scalars().first()
    if found is None:
        raise NotFound(f"marker {marker!r} is not a known {noun}")
    return found
