"""PEM CA bundles given inline in a site's auth, written where keystoneauth can read them.

keystoneauth (requests) wants a file path, not PEM text. The file must not be one another local
user could have planted or can swap: a predictable name in the shared temporary directory would let
them pre-create it with their own CA and intercept the site's TLS (and so its password). Each process
therefore writes bundles into its own directory made by ``tempfile.mkdtemp`` (mode 0700, random name),
each file created exclusively with mode 0600, and only files this process wrote are ever reused.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_directory: Path | None = None
_written: dict[str, Path] = {}


def _private_directory() -> Path:
    """This process's 0700 directory, made again if a temp cleaner removed it (caller holds the lock)."""
    global _directory
    if _directory is None or not _directory.is_dir():
        _directory = Path(tempfile.mkdtemp(prefix="skyfleet-ca-"))
        os.chmod(_directory, 0o700)
        atexit.register(shutil.rmtree, _directory, True)
        _written.clear()
    return _directory


def _write_new(directory: Path, name: str, pem: str) -> Path:
    """Write ``pem`` to a fresh file (O_EXCL, 0600) then move it into place atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pem", dir=directory)  # O_EXCL, mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        path = directory / name
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def bundle_path(pem: str) -> str:
    """The path of a private file holding ``pem`` (written once per process and content)."""
    digest = hashlib.sha256(pem.encode()).hexdigest()
    with _lock:
        directory = _private_directory()
        path = _written.get(digest)
        if path is None or not path.is_file():
            path = _write_new(directory, f"ca-{digest[:32]}.pem", pem)
            _written[digest] = path
        return str(path)
