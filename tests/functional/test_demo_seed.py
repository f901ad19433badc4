"""The demo's seeding creates the tenant's resources on every simulated site and survives a dead one."""

from __future__ import annotations

from skyfleet.cli.demo_seed import SERVERS_PER_SITE, seed_fleet
from skyfleet.simulator import Simulator


def test_seed_fleet_boots_servers_and_skips_a_dead_site() -> None:
    with Simulator(3) as sim:
        names = sim.site_names()
        sim.set_faults(names[2], down=True)
        booted = seed_fleet([sim.cloud(name, user="demo") for name in names])
        assert booted == 2 * SERVERS_PER_SITE
        for name in names[:2]:
            servers = sim.state(name).nova.servers
            assert len(servers) == SERVERS_PER_SITE
            assert sim.answered(name, "POST", "/volume/v3/") == 1
        assert len(sim.state(names[2]).nova.servers) == 0
