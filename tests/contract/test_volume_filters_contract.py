"""Contract: how Cinder answers the volume filters an incremental inventory read could use.

Skyfleet lists volumes as admin across projects. What the real sites showed (cinder 29):

* a filter Cinder does not know (``changes-since``, which is Nova's, or any made-up key) is not an
  error and not ignored: an admin gets ``200`` with an empty list, at every microversion;
* ``updated_at=gte:<ISO 8601>`` at microversion 3.60 lists the volumes changed since then, and a
  timestamp it cannot parse is a 400;
* a microversion above the site's maximum is a 406 (how Skyfleet learns a site is older than 3.60).

The last test reads the change feed through the driver itself (``Reader.changed_volumes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contract_support import Site, Tenant, quiet, unique, wait_for

from skyfleet.drivers.openstack.inventory import Reader

pytestmark = pytest.mark.contract


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(site: Site, query: str, microversion: str | None = None) -> Any:
    response = site.admin.block_storage.get(f"/volumes/detail?all_tenants=1&{query}", microversion=microversion,
                                            raise_exc=False)
    return response


@pytest.fixture
def volume(site: Site, project: Tenant) -> Iterator[Any]:
    """One available volume of a member project; its admin view (with ``updated_at``)."""
    made = project.conn.block_storage.create_volume(name=unique("filter"), size=1)
    try:
        wait_for(lambda: project.conn.block_storage.get_volume(made.id).status != "creating", timeout=60)
        yield site.admin.block_storage.get_volume(made.id)
    finally:
        quiet(project.conn.block_storage.delete_volume, made.id)


@pytest.mark.parametrize("microversion", [None, "3.59", "3.60"])
def test_unknown_filter_lists_nothing_for_an_admin(site: Site, volume: Any, microversion: str | None) -> None:
    assert volume.id in {v["id"] for v in _listed(site, "", microversion).json()["volumes"]}
    for query in ("changes-since=2000-01-01T00:00:00Z", f"{unique('no-such-filter')}=1"):
        response = _listed(site, query, microversion)
        assert response.status_code == 200, (query, response.text)
        assert response.json()["volumes"] == [], (query, microversion)


def test_updated_at_filter_at_3_60(site: Site, volume: Any) -> None:
    moment = datetime.fromisoformat(str(volume.updated_at).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    before = _listed(site, f"updated_at=gte:{_stamp(moment - timedelta(seconds=2))}", "3.60")
    assert before.status_code == 200
    assert volume.id in {v["id"] for v in before.json()["volumes"]}
    after = _listed(site, f"updated_at=gte:{_stamp(moment + timedelta(minutes=5))}", "3.60")
    assert volume.id not in {v["id"] for v in after.json()["volumes"]}
    assert _listed(site, "updated_at=gte:not-a-time", "3.60").status_code == 400


def test_microversion_above_the_maximum_is_406(site: Site) -> None:
    response = site.admin.block_storage.get("/volumes/detail", microversion="3.999", raise_exc=False)
    assert response.status_code == 406, response.text


@pytest.mark.covers("inventory.Reader.changed_volumes")
def test_driver_change_feed_of_volumes(site: Site, volume: Any) -> None:
    reader = Reader(site.admin)
    moment = datetime.fromisoformat(str(volume.updated_at).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    changed, ids = reader.changed_volumes(_stamp(moment - timedelta(seconds=2)))
    assert volume.id in {r.remote_id for r in changed} and volume.id in ids
    (row,) = [r for r in changed if r.remote_id == volume.id]
    assert row.project_id == volume.project_id and row.updated
    changed, ids = reader.changed_volumes(_stamp(moment + timedelta(minutes=5)))
    assert volume.id not in {r.remote_id for r in changed} and volume.id in ids
