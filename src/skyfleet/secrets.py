"""Encryption at rest for site credentials (Fernet), with key rotation.

Keys come from ``SKYFLEET_SECRET_KEYS`` (comma-separated, newest first) or from a key file that is
generated on first start with mode 0600. Every key in the list can decrypt; only the first encrypts,
so rotating is: put a new key first, then re-encrypt the stored rows (``skyfleet keys rotate``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from skyfleet.config import Settings
from skyfleet.errors import SkyfleetError
from skyfleet.private_files import private_dir


class KeyError_(SkyfleetError):
    """The configured keys cannot be used, or cannot decrypt a stored secret."""


def _read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _write_key_file(path: Path, keys: list[str]) -> None:
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_keys(settings: Settings, *, create: bool = True) -> list[str]:
    """The Fernet keys in force, newest first; generates a key file when none exists."""
    if settings.secret_keys is not None and settings.secret_keys.get_secret_value().strip():
        keys = [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    elif settings.key_file.exists():
        keys = _read_key_file(settings.key_file)
    elif create:
        keys = [Fernet.generate_key().decode()]
        _write_key_file(settings.key_file, keys)
    else:
        raise KeyError_(f"no secret keys configured and no key file at {settings.key_file}")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise KeyError_("a configured secret key is not a valid Fernet key") from exc
    if not keys:
        raise KeyError_("the list of secret keys is empty")
    return keys


def add_key_to_file(settings: Settings) -> str:
    """Generate a new primary key in the key file (older keys stay for decryption)."""
    if settings.secret_keys is not None and settings.secret_keys.get_secret_value().strip():
        raise KeyError_("keys come from SKYFLEET_SECRET_KEYS: put a new key first in that list instead")
    keys = _read_key_file(settings.key_file) if settings.key_file.exists() else []
    new_key = Fernet.generate_key().decode()
    _write_key_file(settings.key_file, [new_key, *keys])
    return new_key


class SecretBox:
    """Encrypts and decrypts JSON documents with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, document: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(document, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise KeyError_("stored secret cannot be decrypted with the configured keys") from exc
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the primary key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise KeyError_("stored secret cannot be decrypted with the configured keys") from exc


def drop_old_keys(settings: Settings) -> int:
    """Keep only the primary key in the key file (after every secret was re-encrypted)."""
    keys = _read_key_file(settings.key_file)
    _write_key_file(settings.key_file, keys[:1])
    return len(keys) - 1
