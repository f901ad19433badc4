"""Settings validation."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from skyfleet.config import Settings, is_loopback


def test_keystone_mode_needs_a_home_keystone(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="home_auth_url"):
        Settings(data_dir=tmp_path, auth_mode="keystone", home_auth_url="")


def test_unknown_database_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(data_dir=tmp_path, auth_mode="noauth", database_url="oracle://x")


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_mode="noauth")
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'skyfleet.db'}"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("10.0.0.5", False), ("example.org", False)])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_log_settings_take_any_case_and_refuse_unknown_values(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYFLEET_LOG_FORMAT", "JSON")
    monkeypatch.setenv("SKYFLEET_LOG_LEVEL", "debug")
    settings = Settings(data_dir=tmp_path, auth_mode="noauth")
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(data_dir=tmp_path, auth_mode="noauth", log_format="xml")
    assert Settings(data_dir=tmp_path, auth_mode="noauth", log_format="auto").log_format == "auto"


@pytest.mark.parametrize(("env", "value", "reason"), [
    ("SKYFLEET_SYNC_CONVERGE_INTERVAL", "inf", "finite number"),
    ("SKYFLEET_SYNC_CONVERGE_INTERVAL", "1e12", "at most 31622400 seconds"),
    ("SKYFLEET_AUDIT_INTERVAL", "nan", "finite number"),
    ("SKYFLEET_SYNC_AUDIT_INTERVAL", "Infinity", "finite number"),
    ("SKYFLEET_QUOTA_INTERVAL", "1e400", "finite number"),
    ("SKYFLEET_SITE_TIMEOUT", "inf", "finite number"),
])
def test_an_interval_the_scheduler_cannot_add_to_the_clock_is_refused_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, reason: str) -> None:
    # Such a value once passed `config check` and then killed the scheduler thread at its first claim
    # (OverflowError), leaving a server that answered but never audited a site again.
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=reason):
        Settings(data_dir=tmp_path, auth_mode="noauth")


def test_the_longest_interval_still_schedules(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_mode="noauth", sync_audit_interval=366 * 86400.0)
    assert datetime.now(UTC) + timedelta(seconds=settings.effective_sync_converge_interval) > datetime.now(UTC)
