"""The identity kinds' short-lived memory of domain and role ids: a found id is asked for once per
Keystone, an absent one every time, and a write that fails with a remembered id forgets them and
is retried (temporary) instead of failing the binding for good."""

from __future__ import annotations

from typing import Any

import pytest

from skyfleet.drivers.openstack import identityapi
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.reconcile.kinds import SiteContext, identity_ids


def ctx(site: str, auth_url: str) -> SiteContext:
    return SiteContext(site_id=site, site_name=site, auth={"auth_url": auth_url}, timeout=1, pool=None)  # type: ignore[arg-type]


class Conn:
    pass


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"calls": 0, "ids": {"Acme": "d-1"}}

    def domain_id(_conn: Any, name: str) -> str | None:
        state["calls"] += 1
        return state["ids"].get(name)

    monkeypatch.setattr(identityapi, "domain_id", domain_id)
    monkeypatch.setattr(SiteContext, "connection", lambda self: Conn())
    identity_ids._IDS.clear()
    return state


def test_a_found_id_is_asked_once_per_keystone_and_an_absent_one_every_time(asked: dict[str, Any]) -> None:
    one, other_region, elsewhere = ctx("a", "http://ks1/v3"), ctx("b", "http://ks1/v3/"), ctx("c", "http://ks2/v3")
    assert [identity_ids.domain_id(c, "Acme") for c in (one, other_region, one)] == ["d-1"] * 3
    assert asked["calls"] == 1  # regions of one Keystone share it
    assert identity_ids.domain_id(elsewhere, "Acme") == "d-1" and asked["calls"] == 2
    for _ in range(2):
        assert identity_ids.domain_id(one, "Nowhere") is None
    assert asked["calls"] == 4  # an absent domain may be created any moment: never remembered


def test_a_write_failing_with_a_remembered_id_forgets_it_and_is_retried(asked: dict[str, Any]) -> None:
    site = ctx("a", "http://ks1/v3")
    identity_ids.begin()
    identity_ids.domain_id(site, "Acme")  # looked up: not remembered yet in this attempt
    # a refusal with ids fresh from the site stays permanent
    with pytest.raises(PermanentSiteError), identity_ids.forgetting(site):
        raise PermanentSiteError("refused", status=403)
    identity_ids.begin()
    asked["ids"]["Acme"] = "d-2"  # deleted and made again meanwhile
    identity_ids.domain_id(site, "Acme")
    identity_ids.begin()
    assert identity_ids.domain_id(site, "Acme") == "d-2"  # remembered (a hit) ...
    # ... and stale: temporary, forgotten
    with pytest.raises(TemporarySiteError, match="looked up again"), identity_ids.forgetting(site):
        raise PermanentSiteError("no such domain", status=404)
    calls = asked["calls"]
    assert identity_ids.domain_id(site, "Acme") == "d-2" and asked["calls"] == calls + 1
