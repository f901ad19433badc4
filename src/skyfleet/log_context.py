"""Correlation ids carried by every log line: request, principal, operation, task and site.

Why it exists: one user request fans out into operations and per-site tasks run by other threads and
other processes; an operator following one of them through the logs needs the same ids on every
line, whichever module wrote it. The ids live in :mod:`contextvars` (so concurrent requests and
worker threads never see each other's), set where they become known (the access log middleware for
the request id, the access decision for the principal, the engine around each task) and copied onto
each record by :class:`ContextFilter`. Never a token: the principal is its user and project ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

FIELDS = ("request_id", "user_id", "project_id", "operation_id", "task_id", "site_id")
_VARS: dict[str, ContextVar[str | None]] = {name: ContextVar(f"skyfleet_{name}", default=None) for name in FIELDS}


def current() -> dict[str, str]:
    """The ids set in this context (unset ones left out)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


def get(name: str) -> str | None:
    """One id of this context, or None."""
    return _VARS[name].get()


def bind(**ids: str | None) -> dict[str, Token[str | None]]:
    """Set ids in this context until :func:`reset` (or the end of the task or thread that set them)."""
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {sorted(unknown)}")
    return {name: _VARS[name].set(value) for name, value in ids.items()}


def reset(tokens: dict[str, Token[str | None]]) -> None:
    """Undo a :func:`bind`."""
    for name, token in tokens.items():
        _VARS[name].reset(token)


@contextmanager
def scope(**ids: str | None) -> Iterator[None]:
    """Ids set for the length of a ``with`` block (the engine wraps each task in one)."""
    tokens = bind(**ids)
    try:
        yield
    finally:
        reset(tokens)


class ContextFilter(logging.Filter):
    """Copies the context's ids onto each record (an id passed in ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
