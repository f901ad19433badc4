"""Kingbird 1.3.0's own source, fetched at test time, and the import setup its test modules need.

Why it exists: Skyfleet's Kingbird API is judged by Kingbird's own tests, loaded unchanged from the
released source distribution (``pip download --no-deps --no-binary :all: kingbird==1.3.0``), kept
in a cache directory (``SKYFLEET_KINGBIRD_CACHE``, default ``/tmp/skyfleet-kingbird-1.3.0``) and
reused when present. Nothing of Kingbird is copied into Skyfleet.

Kingbird's storage module (``kingbird.db.sqlalchemy.api``) was written for SQLAlchemy 1.x
(``joinedload_all``, ``oslo_db.sqlalchemy.migration``) and cannot be imported next to Skyfleet's
SQLAlchemy 2. Its tests only ever replace it with mocks, so :func:`prepare_imports` puts an inert
stand-in module under that name; every other Kingbird module is imported as shipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import types
from pathlib import Path
from unittest import mock

VERSION = "1.3.0"
CACHE = Path(os.environ.get("SKYFLEET_KINGBIRD_CACHE", f"/tmp/skyfleet-kingbird-{VERSION}"))
STORAGE_MODULE = "kingbird.db.sqlalchemy.api"


def source_dir() -> Path:
    """The unpacked sdist (downloaded and unpacked once, then reused)."""
    root = CACHE / f"kingbird-{VERSION}"
    if (root / "kingbird" / "tests").is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"kingbird-{VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"kingbird=={VERSION}", "-d", str(CACHE)], check=True, timeout=600)
    partial = CACHE / "unpacking"
    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter="data")
    (partial / f"kingbird-{VERSION}").rename(root)
    partial.rmdir()
    return root


def prepare_imports() -> Path:
    """Make ``import kingbird...`` load the sdist's modules (and the storage stand-in)."""
    root = source_dir()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if STORAGE_MODULE not in sys.modules:
        inert = types.ModuleType(STORAGE_MODULE)
        inert.__doc__ = "Inert stand-in: Kingbird's SQLAlchemy 1.x storage, replaced by mocks in its tests."
        inert.__getattr__ = lambda name: mock.MagicMock(name=f"{STORAGE_MODULE}.{name}")  # type: ignore[method-assign]
        sys.modules[STORAGE_MODULE] = inert
    return root
