"""The FastAPI application factory (nothing is built at import time)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from skyfleet import __version__, logs
from skyfleet.api import access_log, errors, local_guard, metrics, security_headers
from skyfleet.api.body_limit import BodyLimit
from skyfleet.api.deps import RuntimeDep, authorize, bind_log_context
from skyfleet.api.routes import (
    address_pools,
    events,
    images,
    indicators,
    inventory,
    kingbird_quota,
    kingbird_sync,
    networks,
    operations,
    projects,
    signin,
    sites,
)
from skyfleet.api.routes import addresses as address_routes
from skyfleet.api.routes import identity as identity_routes
from skyfleet.api.routes import locations as location_routes
from skyfleet.api.routes import quotas as quota_routes
from skyfleet.api.routes import servers as server_routes
from skyfleet.api.routes import sync as sync_routes
from skyfleet.api.routes import ui as ui_routes
from skyfleet.api.routes import vpn as vpn_routes
from skyfleet.api.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, start_workers: bool | None = None) -> FastAPI:
    """An app bound to ``runtime``; starts the periodic workers unless told otherwise."""
    workers = runtime.settings.workers_enabled if start_workers is None else start_workers

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if workers:
            runtime.start_workers()
        yield
        runtime.close()

    app = FastAPI(title="Skyfleet", version=__version__, lifespan=lifespan,
                  description="One control point for a fleet of independent OpenStack clouds.",
                  # the one access decision, for every route; then the caller's ids in the log context
                  dependencies=[Depends(authorize), Depends(bind_log_context)])
    app.state.runtime = runtime
    logs.SECRETS.add(runtime.settings.metrics_token.get_secret_value())  # never printed
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes, streams=(
        ("PUT", re.compile(r"/v1/images/[^/]+/file/?"), runtime.settings.image_upload_max_bytes),))
    local_guard.install(app, runtime.settings)
    app.add_middleware(security_headers.SecurityHeaders)  # on errors and refusals too
    app.add_middleware(access_log.AccessLog)  # outermost: also logs what the guard refuses
    app.include_router(signin.router)
    app.include_router(sites.router)
    app.include_router(events.router)
    app.include_router(operations.router)
    for sync_router in sync_routes.routers:
        app.include_router(sync_router)
    for identity_router in identity_routes.routers:
        app.include_router(identity_router)
    app.include_router(images.router)
    app.include_router(server_routes.router)
    app.include_router(kingbird_sync.router)
    app.include_router(projects.router)
    app.include_router(quota_routes.router)
    app.include_router(kingbird_quota.router)
    app.include_router(inventory.router)
    app.include_router(indicators.router)
    app.include_router(location_routes.router)
    app.include_router(metrics.router)
    for address_router in address_routes.routers:
        app.include_router(address_router)
    app.include_router(address_pools.router)
    app.include_router(networks.router)
    app.include_router(vpn_routes.router)
    app.include_router(ui_routes.build_router())  # the dashboard's files (public, no data)

    @app.get("/", tags=["meta"])
    def root(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"name": "skyfleet", "version": __version__, "auth_mode": runtime.settings.auth_mode,
                "links": {"docs": "/docs", "openapi": "/openapi.json", "ui": "/ui/", "sites": "/v1/sites",
                          "events": "/v1/events"},
                # Kingbird's version document, for python-kingbirdclient and tools that probe it
                "versions": [{"status": "CURRENT", "id": "v1.0", "updated": "2016-03-07",
                              "links": [{"rel": "self", "href": f"{base}/v1.0/"}]}]}

    @app.get("/healthz", tags=["meta"], response_model=None)
    def healthz(rt: RuntimeDep) -> dict[str, str] | JSONResponse:
        try:
            with rt.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": "ok"}

    return app
