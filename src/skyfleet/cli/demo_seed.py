"""Give the demo's simulated sites something to show: a tenant's image, network, servers and volume.

It acts as the demo tenant would, through openstacksdk against each simulated site, so the global
view, quota usage and IP inventory have real rows from the first refresh.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openstack

log = logging.getLogger(__name__)
SERVERS_PER_SITE = 3


def seed_site(index: int, cloud: dict[str, Any]) -> int:
    """Create the demo tenant's resources on one site; returns how many servers it booted."""
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **cloud)
    image = conn.image.create_image(name="cirros-demo", data=io.BytesIO(b"demo-image" * 1024), disk_format="qcow2",
                                    container_format="bare")
    network = conn.network.create_network(name="demo-net")
    conn.network.create_subnet(network_id=network.id, name="demo-subnet", ip_version=4,
                               cidr=f"10.{index % 250}.0.0/24")
    flavor = next(f for f in conn.compute.flavors() if f.vcpus == 1)
    for n in range(SERVERS_PER_SITE):
        conn.compute.create_server(name=f"web-{index:02d}-{n}", image_id=image.id, flavor_id=flavor.id,
                                   networks=[{"uuid": network.id}])
    conn.block_storage.create_volume(name=f"data-{index:02d}", size=10)
    conn.close()
    return SERVERS_PER_SITE


def seed_fleet(clouds: list[dict[str, Any]]) -> int:
    """Seed every site concurrently; a site that fails is logged and skipped. Returns servers booted."""
    def one(item: tuple[int, dict[str, Any]]) -> int:
        try:
            return seed_site(*item)
        except Exception as exc:  # the demo still starts with the sites that worked
            log.warning("could not seed demo site %d: %s", item[0], type(exc).__name__)
            return 0

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(one, enumerate(clouds)))
