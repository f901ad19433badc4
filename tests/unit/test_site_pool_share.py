"""The process's site pool takes the health audit's fresh token for a credential: the pool's cached
session uses it (or the probe's session is adopted when none is cached); an older token never
replaces a newer one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from skyfleet.drivers.openstack.pool import SitePool

AUTH = {"auth_url": "http://keystone.example/v3", "username": "skyfleet", "password": "x", "project_name": "admin",
        "user_domain_name": "Default", "project_domain_name": "Default"}


def fake_session(expires_in: float | None) -> Any:
    ref = None if expires_in is None else SimpleNamespace(expires=datetime.now(UTC) + timedelta(seconds=expires_in))
    return SimpleNamespace(auth=SimpleNamespace(auth_ref=ref))


def test_the_first_fresh_session_is_adopted_and_later_tokens_are_shared() -> None:
    pool = SitePool()
    first = fake_session(3600)
    pool.share(AUTH, timeout=30, fresh=first)
    assert pool.session(AUTH, timeout=30) is first  # adopted: no login of the pool's own
    newer = fake_session(3700)
    pool.share(AUTH, timeout=30, fresh=newer)
    assert pool.session(AUTH, timeout=30) is first and first.auth.auth_ref is newer.auth.auth_ref
    older = fake_session(60)
    pool.share(AUTH, timeout=30, fresh=older)
    assert first.auth.auth_ref is newer.auth.auth_ref  # an older token never replaces a newer one
    pool.share(AUTH, timeout=30, fresh=fake_session(None))  # a session that did not log in gives nothing
    assert first.auth.auth_ref is newer.auth.auth_ref


def test_another_credential_or_timeout_is_another_entry() -> None:
    pool = SitePool()
    pool.share(AUTH, timeout=30, fresh=fake_session(3600))
    other = fake_session(3600)
    pool.share({**AUTH, "username": "other"}, timeout=30, fresh=other)
    assert pool.session({**AUTH, "username": "other"}, timeout=30) is other
    assert pool.session(AUTH, timeout=30) is not other
