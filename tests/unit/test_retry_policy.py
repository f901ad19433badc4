"""Backoff sequences and the temporary/permanent split of site errors."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from skyfleet.config import RetryPolicy, Settings
from skyfleet.drivers.openstack.errors import translate
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.reconcile.policy import FakeClock, backoff


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial=1, multiplier=2, max_delay=10, jitter=0, max_attempts=9)
    assert [backoff(policy, n, lambda: 0.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_adds_at_most_its_fraction() -> None:
    policy = RetryPolicy(initial=4, multiplier=2, max_delay=100, jitter=0.5)
    assert backoff(policy, 1, lambda: 0.0) == 4
    assert backoff(policy, 1, lambda: 1.0) == 6
    assert backoff(policy, 2, lambda: 0.5) == 10


def test_policy_is_configuration_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYFLEET_TASK_RETRY", '{"initial": 0.5, "max_attempts": 3}')
    settings = Settings(auth_mode="noauth")
    assert settings.task_retry.initial == 0.5
    assert settings.task_retry.max_attempts == 3
    assert settings.task_retry.multiplier == 2.0
    monkeypatch.setenv("SKYFLEET_TASK_RETRY", '{"initial": -1}')
    with pytest.raises(ValueError):
        Settings(auth_mode="noauth")


def test_fake_clock_sleep_takes_no_time() -> None:
    clock = FakeClock()
    start = clock.now()
    clock.sleep(3600)
    assert (clock.now() - start).total_seconds() == 3600
    assert clock.slept == [3600]


@pytest.mark.parametrize(("exc", "temporary"), [
    (sdk_exc.HttpException(message="boom", http_status=503), True),
    (sdk_exc.HttpException(message="busy", http_status=409), True),
    (sdk_exc.HttpException(message="Quota exceeded, too many key pairs.", http_status=403), True),
    (sdk_exc.HttpException(message="Policy doesn't allow it", http_status=403), False),
    (sdk_exc.HttpException(message="Invalid input for field", http_status=400), False),
    (sdk_exc.HttpException(message="Flavor x not found", http_status=404), False),
    (ks_exc.ConnectFailure("refused"), True),
    (ks_exc.ConnectTimeout("slow"), True),
    (ks_exc.RequestTimeout("slow"), True),
    (ks_exc.Unauthorized("bad token"), True),
    (ks_exc.EndpointNotFound("no compute"), False),
    (ValueError("bug"), False),
])
def test_site_errors_are_classified_once(exc: Exception, temporary: bool) -> None:
    error = translate(exc)
    assert isinstance(error, TemporarySiteError if temporary else PermanentSiteError)
    assert error.temporary is temporary


def test_permanent_error_keeps_the_site_message() -> None:
    error = translate(sdk_exc.HttpException(message="Invalid input for field name", http_status=400))
    assert "Invalid input for field name" in error.message
    assert error.status == 400
