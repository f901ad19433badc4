"""Settings validation."""

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
