"""``skyfleet serve`` freezes its start-up heap before it serves: the long-lived objects leave the
garbage collector's full walks (the placement benchmark's p99 halved with it)."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
import uvicorn

from skyfleet.api.runtime import Runtime
from skyfleet.cli import server


def test_serve_freezes_the_heap_before_serving(monkeypatch: pytest.MonkeyPatch,
                                               runtime_factory: Callable[..., Runtime]) -> None:
    frozen_when_serving: list[int] = []
    monkeypatch.setattr(server.logs, "configure", lambda *_args: None)  # the test process keeps its logging
    monkeypatch.setattr(server.logs, "install_redaction", lambda: None)
    monkeypatch.setattr(uvicorn.Server, "run", lambda _self: frozen_when_serving.append(gc.get_freeze_count()))
    runtime = runtime_factory(None, None)
    gc.unfreeze()
    try:
        server.run_server(runtime.settings, runtime=runtime)
    finally:
        gc.unfreeze()  # the rest of the test process collects as usual
    assert frozen_when_serving and frozen_when_serving[0] > 10_000
