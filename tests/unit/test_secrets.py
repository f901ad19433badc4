"""Encryption at rest and key rotation."""

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from skyfleet.config import Settings
from skyfleet.secrets import KeyError_, SecretBox, add_key_to_file, drop_old_keys, load_keys


def test_key_file_is_generated_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_mode="noauth")
    keys = load_keys(settings)
    assert len(keys) == 1
    mode = stat.S_IMODE(settings.key_file.stat().st_mode)
    assert mode == 0o600
    assert load_keys(settings) == keys  # stable across restarts


def test_roundtrip_and_ciphertext_hides_the_secret(tmp_path: Path) -> None:
    box = SecretBox(load_keys(Settings(data_dir=tmp_path, auth_mode="noauth")))
    token = box.encrypt({"password": "hunter2-long"})
    assert "hunter2" not in token
    assert box.decrypt(token) == {"password": "hunter2-long"}


def test_rotation_reencrypts_so_old_keys_can_be_dropped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_mode="noauth")
    old_box = SecretBox(load_keys(settings))
    stored = old_box.encrypt({"password": "p1-secret"})
    add_key_to_file(settings)
    new_box = SecretBox(load_keys(settings))
    assert new_box.decrypt(stored) == {"password": "p1-secret"}  # old key still decrypts
    rotated = new_box.rotate(stored)
    assert drop_old_keys(settings) == 1
    only_new = SecretBox(load_keys(settings))
    assert only_new.decrypt(rotated) == {"password": "p1-secret"}
    with pytest.raises(KeyError_):
        only_new.decrypt(stored)  # not rotated: unreadable once the old key is gone


def test_keys_from_settings_take_precedence_and_are_validated(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(data_dir=tmp_path, auth_mode="noauth", secret_keys=f"{key}")
    assert load_keys(settings) == [key]
    assert not settings.key_file.exists()
    with pytest.raises(KeyError_):
        load_keys(Settings(data_dir=tmp_path, auth_mode="noauth", secret_keys="not-a-key"))
