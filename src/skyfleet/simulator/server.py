"""The HTTP front of the simulator: one listener, sites routed by path prefix, faults applied first.

Why it exists: it is the only place that knows the URL layout (/<site>/<service>/...), counts
requests per site, applies faults before any service code runs, authenticates tokens for the
non-identity services and serves the `/_sim/` admin endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from . import admin, cinder, glance, keystone, neutron, nova, placement
from .faults import Faults, hang
from .httpkit import BadJson, Ctx, json_response, unauthorized
from .state import Fleet, Site

log = logging.getLogger("skyfleet.simulator")


class Service(Protocol):
    async def handle(self, ctx: Ctx) -> web.StreamResponse: ...

    def error(self, ctx: Ctx, status: int, message: str) -> web.StreamResponse: ...

    def discovery(self, ctx: Ctx) -> web.StreamResponse | None: ...


SERVICE_MODULES: dict[str, Any] = {
    "identity": keystone,
    "compute": nova,
    "image": glance,
    "network": neutron,
    "volume": cinder,
    "placement": placement,
}


CLIENT_GONE = 499  # the client went away before an answer: the request was never applied


class SimServer:
    """Dispatches requests to sites; one instance per running simulator."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.stopping = asyncio.Event()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        parts = path.split("/", 3)
        name = parts[1] if len(parts) > 1 else ""
        if name == "_sim":
            return await admin.handle(self.fleet, request, "/" + "/".join(parts[2:]))
        site = self.fleet.sites.get(name)
        if site is None or len(parts) < 3 or parts[2] not in SERVICE_MODULES:
            return json_response({"error": {"code": 404, "title": "Not Found",
                                            "message": f"No simulated service at {path}"}}, 404)
        segment = parts[2]
        faults = site.faults
        if faults is not None and not faults.applies_to(segment):
            faults = None
        if faults is not None and faults.down:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is written back; the client sees a dropped connection
        site_path = path[len(name) + 1 :]
        site.count(request.method, site_path)
        service: Service = SERVICE_MODULES[segment]
        ctx = Ctx(request, site, f"{self.fleet.base_url}/{name}/{segment}",
                  "/" + (parts[3] if len(parts) > 3 else ""), faults=faults)
        response: web.StreamResponse | None = None
        try:
            if faults is not None:
                response = await self._apply_faults(site, ctx, service, faults)
            if response is None:
                response = await self._dispatch(ctx, service)
        except (asyncio.CancelledError, ConnectionResetError):
            site.answered(request.method, site_path, CLIENT_GONE)  # cut off before it was applied
            raise
        site.answered(request.method, site_path, response.status)
        return response

    async def _apply_faults(self, site: Site, ctx: Ctx, service: Service, faults: Faults
                            ) -> web.StreamResponse | None:
        segment = ctx.base.rsplit("/", 1)[-1]

        def current() -> Faults | None:
            now = site.faults
            return now if now is not None and now.applies_to(segment) else None

        if faults.hang:
            await hang(lambda: (now := current()) is not None and now.hang, self.stopping)
            faults = current() or faults
            ctx.faults = current()
        if faults.delays:
            await asyncio.sleep(faults.delay_s())
        if faults.roll_error():
            return service.error(ctx, 503, "The server is currently unavailable. Please try again at a later time.")
        return None

    async def _dispatch(self, ctx: Ctx, service: Service) -> web.StreamResponse:
        try:
            found = service.discovery(ctx)
            if found is not None:
                return found
            if ctx.base.rsplit("/", 1)[-1] != "identity":
                ctx.token = ctx.site.keystone.token(ctx.request.headers.get("X-Auth-Token"))
                if ctx.token is None:
                    deny = getattr(service, "unauthorized", unauthorized)  # glance words it its own way
                    response: web.StreamResponse = deny(ctx)
                    return response
            return await service.handle(ctx)
        except BadJson as exc:
            return service.error(ctx, 400, str(exc))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("simulated %s failed on %s %s", ctx.site.name, ctx.method, ctx.path)
            return service.error(ctx, 500, "An unexpected error prevented the server from fulfilling your request.")


class Listener:
    """The TCP listener of a running simulator (aiohttp's low-level server, no web.Application)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.sim = SimServer(fleet)
        self._low: web.Server | None = None
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> str:
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = self.sim.handle
        self._low = web.Server(handler, access_log=None, keepalive_timeout=75.0)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._low, host, port, backlog=1024, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.fleet.base_url = f"http://{shown}:{bound[1]}"
        return self.fleet.base_url

    async def stop(self) -> None:
        self.sim.stopping.set()
        if self._server is not None:
            self._server.close()
        if self._low is not None:
            await self._low.shutdown(0.25)
        if self._server is not None:
            await self._server.wait_closed()
