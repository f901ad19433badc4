"""Secrets are masked at the logger, whatever emitted them."""

import logging

import pytest

from skyfleet.logs import SECRETS, install_redaction, redact


def test_registered_values_and_known_shapes_are_masked() -> None:
    SECRETS.add("pa55-word-xyz")
    assert "pa55-word-xyz" not in redact("login failed for pa55-word-xyz")
    assert redact('{"password": "abc123"}') == '{"password": "***"}'
    assert "tok-value" not in redact("X-Auth-Token: tok-value")
    assert redact("nothing secret here") == "nothing secret here"


def test_filter_masks_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    SECRETS.add("very-secret-value-1")
    install_redaction()
    logger = logging.getLogger("skyfleet.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("auth with %s", "very-secret-value-1")
        try:
            raise RuntimeError("boom very-secret-value-1")
        except RuntimeError:
            logger.exception("failed")
    assert caplog.records
    assert "very-secret-value-1" not in caplog.text
    assert "***" in caplog.text
