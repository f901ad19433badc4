"""The FastAPI application factory (nothing is built at import time)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from skyfleet import __version__
from skyfleet.api import errors
from skyfleet.api.deps import RuntimeDep
from skyfleet.api.routes import events, inventory, kingbird_quota, kingbird_sync, operations, projects, sites
from skyfleet.api.routes import quotas as quota_routes
from skyfleet.api.routes import sync as sync_routes
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
                  description="One control point for a fleet of independent OpenStack clouds.")
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(sites.router)
    app.include_router(events.router)
    app.include_router(operations.router)
    for sync_router in sync_routes.routers:
        app.include_router(sync_router)
    app.include_router(kingbird_sync.router)
    app.include_router(projects.router)
    app.include_router(quota_routes.router)
    app.include_router(kingbird_quota.router)
    app.include_router(inventory.router)

    @app.get("/", tags=["meta"])
    def root() -> dict[str, Any]:
        return {"name": "skyfleet", "version": __version__, "auth_mode": runtime.settings.auth_mode,
                "links": {"docs": "/docs", "openapi": "/openapi.json", "sites": "/v1/sites",
                          "events": "/v1/events"}}

    @app.get("/healthz", tags=["meta"], response_model=None)
    def healthz(rt: RuntimeDep) -> dict[str, str] | JSONResponse:
        try:
            with rt.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": "ok"}

    return app
