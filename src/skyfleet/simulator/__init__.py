"""Skyfleet's OpenStack API simulator: many fake OpenStack sites in one process, over real HTTP.

Why it exists: Skyfleet talks to sites only through openstacksdk/keystoneauth, so its tests, its
benchmarks and anyone trying it without a cloud need sites that openstacksdk cannot tell from real
ones -- with faults on demand. This package imports nothing else from Skyfleet.

    with Simulator(5) as sim:
        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.cloud("site-0001"))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from . import clouds as _clouds
from .faults import Faults
from .glance import add_generated
from .imagedata import generate
from .server import Listener
from .state import Fleet, Site, clear_faults, set_faults

__all__ = ["Faults", "Simulator", "Site"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it roughly doubles the request rate), else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Simulator:
    """Serves `sites` simulated OpenStack sites from a background thread with its own event loop."""

    def __init__(self, sites: int = 3, *, regions_per_keystone: int = 1, boot_delay: float = 0.0,
                 latency_ms: float = 0.0, name_prefix: str = "site-", digest_only_images: bool = False) -> None:
        """``digest_only_images``: every site's Glance keeps an upload's size and hashes and drops its
        bytes (downloading such an image answers 410), so copying big images costs no memory."""
        self.fleet = Fleet(regions_per_keystone=regions_per_keystone, boot_delay=boot_delay,
                           latency_ms=latency_ms, name_prefix=name_prefix, digest_only_images=digest_only_images)
        self.fleet.populate(sites)
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in a background thread; returns the base URL (http://host:port)."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = new_event_loop()
        listener = Listener(self.fleet)
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                ready.set_result(loop.run_until_complete(listener.start(host, port)))
            except BaseException as exc:  # report bind errors to the caller
                ready.set_exception(exc)
                loop.close()
                return
            loop.run_forever()
            loop.run_until_complete(listener.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="skyfleet-simulator", daemon=True)
        self._thread.start()
        try:
            self.base_url = ready.result(timeout=30)
        except BaseException:
            self._thread.join(5)
            self._thread = None
            raise
        self._loop, self._listener = loop, listener
        return self.base_url

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._listener is not None:
            self._loop.call_soon_threadsafe(self._listener.sim.stopping.set)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = self._loop = self._listener = None

    def __enter__(self) -> Simulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- sites and configuration -------------------------------------------------------------------

    def site_names(self) -> list[str]:
        return list(self.fleet.sites)

    def add_site(self, name: str | None = None) -> str:
        """Add a share-nothing site (its own keystone, RegionOne) while running; returns its name."""
        return self.fleet.add(name).name

    def cloud(self, site: str, *, user: str = "admin") -> dict[str, Any]:
        """A clouds.yaml entry (openstack.connect(**entry) works) for `user` "admin" or "demo"."""
        return _clouds.cloud(self.fleet, site, user=user)

    def clouds_yaml(self, *, user: str = "admin") -> dict[str, Any]:
        return _clouds.clouds_yaml(self.fleet, user=user)

    def write_clouds_yaml(self, path: str | Path, *, user: str = "admin") -> None:
        _clouds.write_clouds_yaml(self.fleet, path, user=user)

    def add_generated_image(self, site: str, size: int, *, name: str = "generated", seed: int = 0,
                            owner: str | None = None, visibility: str = "shared", disk_format: str = "raw",
                            container_format: str = "bare", **properties: str) -> dict[str, Any]:
        """An active image of ``size`` bytes in ``site``'s Glance whose data is generated from ``seed``
        when downloaded, never held (hashed here once: about 2 s of CPU per GiB). Owned by ``owner``
        (default: the site's admin project); returns the image as Glance shows it."""
        target = self.fleet.get(site)
        data = generate(size, seed)
        if self._loop is None:
            return add_generated(target, data, name=name, owner=owner, visibility=visibility,
                                 disk_format=disk_format, container_format=container_format, **properties)
        made: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def insert() -> None:  # in the serving thread: no listing iterates the images meanwhile
            try:
                made.set_result(add_generated(target, data, name=name, owner=owner, visibility=visibility,
                                              disk_format=disk_format, container_format=container_format,
                                              **properties))
            except BaseException as exc:
                made.set_exception(exc)

        self._loop.call_soon_threadsafe(insert)
        return made.result(timeout=30)

    # --- faults and counters -----------------------------------------------------------------------

    def set_faults(self, site: str, **faults: Any) -> None:
        """Change some faults of `site` (down, hang, latency_ms, jitter_ms, error_rate, auth_fail,
        slow_image_bps, slow_image_upload_bps, quota_exceeded, max_page); the others keep their value."""
        set_faults(self.fleet, site, faults)

    def set_vpnaas(self, site: str, enabled: bool) -> None:
        """Whether ``site``'s Neutron offers VPNaaS (the ``vpnaas`` extension; on by default)."""
        self.fleet.get(site).neutron.vpnaas = enabled

    def set_vpn_agent(self, site: str, enabled: bool) -> None:
        """Whether a VPN agent serves ``site``'s VPNaaS (on by default). Off, as on the real test bed:
        services and connections stay ``PENDING_CREATE`` and Neutron refuses to update them."""
        self.fleet.get(site).neutron.vpn_agent = enabled

    def faults(self, site: str) -> Faults:
        current = self.fleet.get(site).faults
        return current.copy() if current else Faults()

    def clear_faults(self, site: str | None = None) -> None:
        clear_faults(self.fleet, site)

    def counters(self, site: str) -> dict[tuple[str, str], int]:
        """(method, path under the site, e.g. "/compute/v2.1/servers") -> requests received."""
        return dict(self.fleet.get(site).counters or {})

    def count(self, site: str, method: str, path_prefix: str = "") -> int:
        """Requests `site` received with `method` whose path starts with `path_prefix`."""
        return sum(n for (m, p), n in self.counters(site).items() if m == method and p.startswith(path_prefix))

    def answered(self, site: str, method: str, path_prefix: str = "", *, statuses: range = range(200, 300)) -> int:
        """Requests of `site` with `method` under `path_prefix` that were answered with one of `statuses`
        (2xx by default): a write that took effect, as opposed to one refused or cut off."""
        return sum(n for (m, p, status), n in (self.fleet.get(site).outcomes or {}).items()
                   if m == method and p.startswith(path_prefix) and status in statuses)

    def reset_counters(self, site: str | None = None) -> None:
        for entry in [self.fleet.get(site)] if site else list(self.fleet.sites.values()):
            entry.counters = None
            entry.outcomes = None

    def state(self, site: str) -> Site:
        """The live state of `site` (.keystone, .nova, .glance, .neutron, .cinder) for tests to poke."""
        return self.fleet.get(site)
