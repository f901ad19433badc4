"""Logging set-up with secret redaction at the logger.

Every record passes through :class:`RedactingFilter`, which masks registered secret values
(site passwords, application credential secrets, tokens seen by the API) and the usual
``password=...`` / ``X-Auth-Token: ...`` shapes, whatever library emitted the line.
"""

from __future__ import annotations

import logging
import re
import threading

_MASK = "***"
_PATTERNS = [
    re.compile(r"(?i)(\"?(?:password|secret|token|application_credential_secret)\"?\s*[:=]\s*\"?)([^\"\s,}]+)"),
    re.compile(r"(?i)(x-(?:auth|subject)-token[\"']?\s*[:=]\s*[\"']?)([^\"'\s,}]+)"),
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


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of ``logger`` (root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def configure(level: str = "INFO") -> None:
    """Log to stderr with redaction; safe to call more than once."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    install_redaction(root)
