"""Inline CA bundles go to a private file: never a planted one, never a shared directory."""

from __future__ import annotations

import hashlib
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyfleet.drivers.openstack import cabundle
from skyfleet.drivers.openstack.session import _verify

PEM = "-----BEGIN CERTIFICATE-----\nMIIBsite\n-----END CERTIFICATE-----\n"
PLANTED = "-----BEGIN CERTIFICATE-----\nMIIBattacker\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def _own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the temporary directory at the test's own and forget this process's bundles."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(cabundle, "_directory", None)
    monkeypatch.setattr(cabundle, "_written", {})
    yield tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_planted_at_the_old_predictable_path_is_not_used(tmp_path: Path) -> None:
    planted = tmp_path / f"skyfleet-ca-{hashlib.sha256(PEM.encode()).hexdigest()[:16]}.pem"
    planted.write_text(PLANTED)
    used = Path(str(_verify({"cacert": PEM})))
    assert used != planted
    assert used.read_text() == PEM
    assert planted.read_text() == PLANTED


def test_bundle_lives_in_a_0700_directory_as_a_0600_file() -> None:
    used = Path(str(_verify({"cacert": PEM})))
    assert _mode(used.parent) == 0o700 and _mode(used) == 0o600
    assert used.parent.name.startswith("skyfleet-ca-") and used.parent.name != "skyfleet-ca-"


def test_a_bundle_file_this_process_did_not_write_is_replaced() -> None:
    used = Path(str(_verify({"cacert": PEM})))
    used.unlink()
    used.write_text(PLANTED)  # stands for a file this process did not write with this content
    cabundle._written.clear()
    again = Path(str(_verify({"cacert": PEM})))
    assert again.read_text() == PEM


def test_paths_and_disabled_verification_pass_through() -> None:
    assert _verify({"cacert": "/etc/ssl/site.pem"}) == "/etc/ssl/site.pem"
    assert _verify({"verify": False, "cacert": PEM}) is False
    assert _verify({}) is True
