"""Checks shared by every router on what arrives in the URL: path parameters and comma-separated lists.

Why it exists: a path parameter or a filter reaches SQL, the log and sometimes a site. A NUL, a bidi
override or a 10,000-character id must be refused with 400 naming the parameter before any query,
the same way on every route, instead of one check per handler (or a 500 from PostgreSQL).
"""

from __future__ import annotations

from fastapi import Depends, Request

from skyfleet.domains.text import forbidden_character
from skyfleet.errors import Invalid

MAX_PATH_PARAM = 255
# Path parameters stored in 64-character columns (Keystone ids and names, quota class names).
SHORT_PATH_PARAMS = {"project_id": 64, "tenant": 64, "target": 64, "name": 64}
MAX_QUERY_VALUE = 8192
MAX_LIST_ITEMS = 64


def _clean_url(request: Request) -> None:
    """400 when a path or query parameter is too long or holds a control, bidi or format character.

    Runs after the application's access decision, so a caller without a valid token still gets 401 first.
    """
    for key, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_VALUE:
            raise Invalid(f"query parameter {key}: at most {MAX_QUERY_VALUE} characters, got {len(value)}")
        problem = forbidden_character(value)
        if problem:
            raise Invalid(f"query parameter {key}: {problem}")
    for key, value in request.path_params.items():
        if not isinstance(value, str):
            continue
        limit = SHORT_PATH_PARAMS.get(key, MAX_PATH_PARAM)
        if len(value) > limit:
            raise Invalid(f"path parameter {key}: at most {limit} characters, got {len(value)}")
        problem = forbidden_character(value)
        if problem:
            raise Invalid(f"path parameter {key}: not allowed in a name: {problem}")


CLEAN_URL = [Depends(_clean_url)]
"""``dependencies=`` of every authenticated router."""


def csv(value: str | None, what: str, *, max_items: int = MAX_LIST_ITEMS) -> tuple[str, ...]:
    """The non-empty items of a comma-separated filter; 400 naming ``what`` beyond ``max_items``."""
    items = tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))
    if len((value or "").split(",")) > max_items or len(items) > max_items:
        raise Invalid(f"{what}: at most {max_items} comma-separated values")
    for item in items:
        problem = forbidden_character(item)
        if problem:
            raise Invalid(f"{what}: {problem}")
    return items
