"""Contract: the listings a quota round uses to learn which projects changed on a site.

Cinder volumes filtered on ``updated_at=gte:`` (microversion 3.60) across projects, and Neutron
listings reduced to ``fields=project_id`` that still show every project's resources to an admin.
Called the way ``skyfleet.drivers.openstack.quota_batch`` calls them: catalog URL plus path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from contract_support import Site, Tenant, quiet, unique, wait_for

pytestmark = pytest.mark.contract


def _get(site: Site, service_type: str, path: str, headers: dict[str, str] | None = None) -> Any:
    base = site.admin.session.get_endpoint(service_type=service_type, interface="public", region_name=site.region)
    response = site.admin.session.get(str(base).rstrip("/") + path, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_volumes_filter_on_updated_at_across_projects(site: Site, project: Tenant) -> None:
    volume = project.conn.block_storage.create_volume(name=unique("hint"), size=1)
    try:
        wait_for(lambda: project.conn.block_storage.get_volume(volume.id).status != "creating", timeout=60)
        updated = site.admin.block_storage.get_volume(volume.id).updated_at
        assert updated, "a created volume has an updated_at once it left 'creating'"
        moment = datetime.fromisoformat(str(updated).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

        def listed(since: datetime) -> dict[str, Any]:
            path = f"/volumes/detail?all_tenants=1&updated_at={quote('gte:' + _stamp(since))}"
            body = _get(site, "block-storage", path, {"OpenStack-API-Version": "volume 3.60"})
            return {v["id"]: v for v in body["volumes"]}

        found = listed(moment - timedelta(seconds=2))
        assert volume.id in found
        assert found[volume.id]["os-vol-tenant-attr:tenant_id"] == project.project_id
        assert volume.id not in listed(moment + timedelta(minutes=5))
    finally:
        quiet(project.conn.block_storage.delete_volume, volume.id)


def test_neutron_lists_every_projects_resources_by_project_id_alone(site: Site, project: Tenant) -> None:
    network = project.conn.network.create_network(name=unique("hint"))
    try:
        for collection in ("networks", "ports", "security-groups", "security-group-rules"):
            items = _get(site, "network", f"/v2.0/{collection}?fields=project_id")[collection.replace("-", "_")]
            assert all(set(item) == {"project_id"} for item in items), collection
        owners = [i["project_id"] for i in _get(site, "network", "/v2.0/networks?fields=project_id")["networks"]]
        assert owners.count(project.project_id) == 1
        assert network.project_id == project.project_id
    finally:
        quiet(project.conn.network.delete_network, network.id)
