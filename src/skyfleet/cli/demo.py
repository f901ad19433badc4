"""The demo: simulated sites plus Skyfleet on SQLite, in one command.

The simulator's first site Keystone is the home Keystone (so the demo runs with real token
authentication); every simulated site is registered with labels, a group and a location.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from skyfleet import logs
from skyfleet.api.runtime import build_runtime
from skyfleet.cli.demo_seed import seed_fleet
from skyfleet.cli.output import console
from skyfleet.config import Settings
from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.schemas import Location, SiteAuth, SiteCreate, SiteUpdate
from skyfleet.errors import NotFound
from skyfleet.private_files import private_dir

CITIES = [
    ("fr", "eu", 48.86, 2.35), ("de", "eu", 50.11, 8.68), ("es", "eu", 40.42, -3.70),
    ("us", "na", 40.71, -74.01), ("ca", "na", 45.50, -73.57), ("jp", "apac", 35.68, 139.69),
    ("sg", "apac", 1.35, 103.82), ("br", "latam", -23.55, -46.63),
]


def demo_site(index: int, name: str, cloud: dict[str, Any]) -> SiteCreate:
    country, group, lat, lon = CITIES[index % len(CITIES)]
    auth = dict(cloud["auth"])
    auth.update(region_name=cloud.get("region_name"), interface=cloud.get("interface", "public"))
    return SiteCreate(
        name=name, auth=SiteAuth.model_validate(auth), group=group,
        labels={"tier": "core" if index % 4 == 0 else "edge", "country": country, "demo": "true"},
        description=f"simulated site {name}", location=Location(latitude=lat, longitude=lon),
    )


def run_demo(*, site_count: int, port: int, sim_port: int, data_dir: Path, audit_interval: float) -> None:
    from skyfleet.cli.server import run_server
    from skyfleet.simulator import Simulator

    logs.configure()
    simulator = Simulator(sites=site_count)
    base_url = simulator.start(port=sim_port)
    names = simulator.site_names()
    home = simulator.cloud(names[0])
    private_dir(data_dir)
    clouds = simulator.clouds_yaml()
    clouds["clouds"]["skyfleet-admin"] = home
    clouds["clouds"]["skyfleet-tenant"] = simulator.cloud(names[0], user="demo")
    clouds_file = data_dir / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump(clouds, sort_keys=True))
    os.chmod(clouds_file, 0o600)

    settings = Settings(
        data_dir=data_dir, port=port, auth_mode="keystone", audit_interval=audit_interval,
        home_auth_url=home["auth"]["auth_url"], home_username=home["auth"]["username"],
        home_password=SecretStr(home["auth"]["password"]), home_project_name=home["auth"]["project_name"],
    )
    booted = seed_fleet([simulator.cloud(name, user="demo") for name in names])
    runtime = build_runtime(settings)
    with transaction(runtime.factory) as session:
        for index, name in enumerate(names):
            wanted = demo_site(index, name, simulator.cloud(name))
            try:
                site = sites.get_site(session, name)
                sites.update_site(session, box=runtime.box, site=site, data=SiteUpdate(auth=wanted.auth))
            except NotFound:
                sites.create_site(session, box=runtime.box, data=wanted)
    console.print(f"[bold]Skyfleet demo[/bold]: {len(names)} simulated sites at {base_url} "
                  f"(admin: {base_url}/_sim/sites)", soft_wrap=True)
    console.print(f"the demo tenant (project demo) runs {booted} servers across the fleet", soft_wrap=True)
    console.print(f"API: http://127.0.0.1:{port}  docs: http://127.0.0.1:{port}/docs", soft_wrap=True)
    console.print(f"CLI: export OS_CLIENT_CONFIG_FILE={clouds_file.resolve()} OS_CLOUD=skyfleet-admin; "
                  ".venv/bin/skyfleet site list", soft_wrap=True)
    try:
        run_server(settings, runtime=runtime)
    finally:
        simulator.stop()


