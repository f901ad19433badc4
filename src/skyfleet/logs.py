"""Logging set-up with secret redaction at the logger, as text or as one JSON object per line.

Every record passes through :class:`RedactingFilter`, which masks registered secret values
(site passwords, application credential secrets, tokens seen by the API) and the usual
``password=...`` / ``X-Auth-Token: ...`` shapes, whatever library emitted the line; then through
:class:`skyfleet.log_context.ContextFilter`, which adds the request, principal, operation, task and
site ids. :class:`JsonFormatter` writes those ids as fields for log shippers and scrubs every string
field again, since structured fields (``extra=``) are not part of the message the filter masks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from skyfleet.log_context import ContextFilter

_MASK = "***"
_PATTERNS = [
    re.compile(r"(?i)(\"?(?:password|secret|token|application_credential_secret|psk)\"?\s*[:=]\s*\"?)([^\"\s,}]+)"),
    re.compile(r"(?i)(x-(?:auth|subject)-token[\"']?\s*[:=]\s*[\"']?)([^\"'\s,}]+)"),
    # the dashboard's cookies and CSRF header (a Cookie or Set-Cookie header, a dumped request)
    re.compile(r"(?i)((?:skyfleet_session|skyfleet_csrf)[\"']?\s*[:=]\s*[\"']?)([^\"'\s,;}]+)"),
    re.compile(r"(?i)(x-csrf-token[\"']?\s*[:=]\s*[\"']?)([^\"'\s,}]+)"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)([^@/?#\s]+)(?=@)"),  # scheme://user:password@host
]


class SecretRegistry:
    """Secret values that must never be printed; thread safe."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def __contains__(self, value: object) -> bool:
        with self._lock:
            return value in self._values

    def discard(self, value: str | None) -> None:
        """Forget a value that is no longer in use (a user's password once it was sent)."""
        with self._lock:
            self._values.discard(value or "")

    def scrub(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, _MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + _MASK, text)
        return text


SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """``text`` with every known secret masked."""
    return SECRETS.scrub(text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the rendered message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        scrubbed = SECRETS.scrub(message)
        if scrubbed != message or record.args:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = SECRETS.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# The attributes every LogRecord has; anything else on a record came from ``extra=`` or a filter.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return SECRETS.scrub(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the context ids, the
    record's extra fields and ``exc`` (a trace); every string masked by the secret registry."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps({key: _scrubbed(value) for key, value in entry.items()}, ensure_ascii=False)


def resolve_format(setting: str, stream: TextIO | None = None) -> Literal["text", "json"]:
    """``auto`` is text on a terminal (a person reads it) and JSON otherwise (a service manager or a
    container runtime collects it)."""
    if setting in ("text", "json"):
        return setting  # type: ignore[return-value]
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redacting and context filters to every handler of ``logger`` (root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def formatter_for(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt`` (``auto`` resolved against stderr)."""
    return JsonFormatter() if resolve_format(fmt) == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr with redaction and context ids, as ``text``, ``json`` or ``auto``; safe to call
    more than once (the last format wins on the handler this function made)."""
    root = logging.getLogger()
    ours: list[logging.Handler] = [h for h in root.handlers if getattr(h, "skyfleet", False)]
    if not root.handlers:
        made = logging.StreamHandler()
        made.skyfleet = True  # type: ignore[attr-defined]
        root.addHandler(made)
        ours = [made]
    for handler in ours:
        handler.setFormatter(formatter_for(fmt))
    root.setLevel(level)
    install_redaction(root)
