"""``skyfleet config check`` shows every setting and none of the secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyfleet.cli.config_view import mask_url
from skyfleet.cli.main import app

runner = CliRunner()
SECRETS = ("db-pass-9431", "broker-pass-7720", "home-pass-5512", "fernet-ish-key-0001")


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SKYFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SKYFLEET_HOME_AUTH_URL", "http://k/v3")
    monkeypatch.setenv("SKYFLEET_DATABASE_URL", "postgresql://u:db-pass-9431@h/db")
    monkeypatch.setenv("SKYFLEET_BROKER_URL", "amqp://guest:broker-pass-7720@mq:5672//")
    monkeypatch.setenv("SKYFLEET_HOME_PASSWORD", "home-pass-5512")
    monkeypatch.setenv("SKYFLEET_SECRET_KEYS", "fernet-ish-key-0001")


@pytest.mark.usefixtures("secret_env")
def test_config_check_masks_url_passwords_and_secret_fields() -> None:
    result = runner.invoke(app, ["config", "check"], terminal_width=200)
    output = result.output
    assert all(secret not in output for secret in SECRETS), output
    assert "postgresql://u:***@h/db" in output
    assert "amqp://guest:***@mq:5672//" in output


@pytest.mark.usefixtures("secret_env")
def test_config_check_json_shape_has_no_secret() -> None:
    result = runner.invoke(app, ["--format", "json", "config", "check"], terminal_width=200)
    assert all(secret not in result.output for secret in SECRETS), result.output


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg://u:p%40ss@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
    ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
    ("amqp://guest@h//", "amqp://guest@h//"),
    ("sqlite:////var/lib/skyfleet/skyfleet.db", "sqlite:////var/lib/skyfleet/skyfleet.db"),
    ("mysql+pymysql://h/db?user=u&password=secret", "mysql+pymysql://h/db?user=u&password=***"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(("env", "value"), [("SKYFLEET_SYNC_CONVERGE_INTERVAL", "abc"),
                                            ("SKYFLEET_AUDIT_FULL_EVERY", "0")])
def test_demo_refuses_a_bad_setting_with_a_reason_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, value)
    result = runner.invoke(app, ["demo", "--sites", "1", "--port", "1", "--sim-port", "1",
                                 "--data-dir", str(tmp_path / "demo")], terminal_width=200)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "invalid configuration" in result.output and env.removeprefix("SKYFLEET_").lower() in result.output
    assert not (tmp_path / "demo" / "clouds.yaml").exists()  # refused before any simulated site started


@pytest.mark.parametrize(("env", "shown"), [({}, 300.0), ({"SKYFLEET_SYNC_AUDIT_INTERVAL": "10"}, 50.0),
                                            ({"SKYFLEET_SYNC_CONVERGE_INTERVAL": "42"}, 42.0)])
def test_config_check_shows_the_converge_interval_in_force(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], shown: float) -> None:
    # unset, the setting itself prints empty: the interval the converge pass runs at is what an operator asks
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKYFLEET_AUTH_MODE", "noauth")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["--format", "json", "config", "check"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[:result.output.rindex("}") + 1])["effective_sync_converge_interval"] == shown
