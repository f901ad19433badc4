"""Secrets are masked at the logger, whatever emitted them."""

import logging

import pytest

from skyfleet.logs import SECRETS, SecretRegistry, install_redaction, redact


def test_registered_values_and_known_shapes_are_masked() -> None:
    SECRETS.add("pa55-word-xyz")
    assert "pa55-word-xyz" not in redact("login failed for pa55-word-xyz")
    assert redact('{"password": "abc123"}') == '{"password": "***"}'
    assert redact('{"ipsec_site_connection": {"psk": "k3y-of-a-mesh"}}') == '{"ipsec_site_connection": {"psk": "***"}}'
    assert "tok-value" not in redact("X-Auth-Token: tok-value")
    # the dashboard's session id and CSRF token, as a Cookie, Set-Cookie or a dumped header
    cookie = "Cookie: skyfleet_session=Sess1on-Id_abc; skyfleet_csrf=CsrF-t0ken_xyz"
    assert "Sess1on-Id_abc" not in redact(cookie) and "CsrF-t0ken_xyz" not in redact(cookie)
    assert "Sess1on-Id_abc" not in redact("set-cookie: skyfleet_session=Sess1on-Id_abc; HttpOnly; Path=/")
    assert "CsrF-t0ken_xyz" not in redact("{'X-CSRF-Token': 'CsrF-t0ken_xyz'}")
    # the shapes alone mask nothing else (a registry of its own: other tests register their passwords)
    assert SecretRegistry().scrub("nothing secret here") == "nothing secret here"


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


def test_a_sites_error_never_quotes_the_pre_shared_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neutron may echo a request's fields in its error; the VPN driver masks the key there."""
    from skyfleet.drivers.openstack import vpnapi
    from skyfleet.errors import PermanentSiteError

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermanentSiteError("HTTP 400: Invalid input for psk. Reason: 'the-key-0123456789' is bad", status=400)

    monkeypatch.setattr(vpnapi, "_call", refuse)
    with pytest.raises(PermanentSiteError) as failed:
        vpnapi.update_site_connection(object(), "c1", peer_address="192.0.2.1",  # type: ignore[arg-type]
                                      psk="the-key-0123456789")
    assert "the-key-0123456789" not in str(failed.value) and failed.value.status == 400
