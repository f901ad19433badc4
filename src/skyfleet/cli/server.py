"""Run the API (and its in-process workers) under uvicorn."""

from __future__ import annotations

import gc

import uvicorn

from skyfleet import logs
from skyfleet.api.app import create_app
from skyfleet.api.runtime import Runtime, build_runtime
from skyfleet.config import Settings


def run_server(settings: Settings, *, runtime: Runtime | None = None) -> None:
    logs.configure(settings.log_level, settings.log_format)
    rt = runtime or build_runtime(settings)
    app = create_app(rt)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=settings.shutdown_grace_seconds)
    server = uvicorn.Server(config)
    logs.install_redaction()
    freeze_heap()
    server.run()


def freeze_heap() -> None:
    """Move what start-up built (modules, mappers, the app, settings) out of the garbage collector's
    walks: it lives as long as the process, and a full collection walking it stalled requests (a
    placement decision's p99 doubled: docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
