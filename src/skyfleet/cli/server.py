"""Run the API (and its in-process workers) under uvicorn."""

from __future__ import annotations

import uvicorn

from skyfleet import logs
from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.config import Settings


def run_server(settings: Settings, *, runtime: Runtime | None = None) -> None:
    logs.configure()
    rt = runtime or build_runtime(settings)
    app = create_app(rt)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    logs.install_redaction()
    server.run()
