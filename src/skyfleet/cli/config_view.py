"""The settings as ``skyfleet config check`` shows them: every secret masked.

Secrets hide in three shapes: SecretStr fields, passwords inside URLs (``database_url``,
``broker_url``: ``postgresql://u:secret@h/db``), and any field whose name says it is one. The output
is meant to be pasted into tickets and chat, so nothing of them may remain.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from skyfleet.config import Settings

MASK = "***"
_SECRET_NAME = re.compile(r"(?i)(password|secret|token|private_key)")
_QUERY_SECRET = re.compile(r"(?i)((?:password|secret|token)[^=&]*=)([^&]*)")


def mask_url(url: str) -> str:
    """``url`` with the password of its user-info (and secret-looking query values) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if has_password else netloc
    query = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url  # urlunsplit would also rewrite sqlite:////abs into sqlite:///abs
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask(name: str, value: Any, raw: Any) -> Any:
    if isinstance(raw, SecretStr):
        return MASK if raw.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(k, v, None) for k, v in value.items()}
    if isinstance(value, str):
        if value and _SECRET_NAME.search(name):
            return MASK
        if "://" in value:
            return mask_url(value)
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Every setting (and the effective database URL and converge interval) ready to print."""
    dumped = settings.model_dump(mode="json")
    shown = {name: _mask(name, value, getattr(settings, name, None)) for name, value in dumped.items()}
    shown["effective_database_url"] = mask_url(settings.effective_database_url)
    shown["effective_sync_converge_interval"] = settings.effective_sync_converge_interval
    return shown
