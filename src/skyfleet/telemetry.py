"""Metrics each Skyfleet process counts itself: HTTP requests and tasks run. Multiprocess-safe.

Why it exists: request latencies and task outcomes happen inside one process and are lost unless
that process counts them; the fleet's state, by contrast, is in the database and is read at scrape
time (``skyfleet.domains.observe``). The metrics here live in :data:`PROCESS`, a registry of their own
(so tests and several apps in one interpreter never clash with the global one). When the
``PROMETHEUS_MULTIPROC_DIR`` environment variable is set before Skyfleet starts (uvicorn or gunicorn
with several workers, or an API and ``skyfleet worker`` processes on one host), prometheus-client
writes every process's values to files in that directory and :func:`exposition` sums them all.
Labels are bounded: route templates (never raw paths), HTTP methods, status codes, task kinds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# no ``_created`` series: they double the series count and no dashboard reads them
disable_created_metrics()  # type: ignore[no-untyped-call]
PROCESS = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=PROCESS)  # process_cpu_seconds_total, process_resident_memory_bytes... (one process)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # requests no route answered (404s, refusals of the guards in front of routing)

HTTP_SECONDS = Histogram(
    "skyfleet_http_request_duration_seconds", "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"], registry=PROCESS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
TASK_RUNS = Counter(
    "skyfleet_task_runs", "Task attempts run by this process's engine, by kind and outcome "
    "(succeeded, failed, retry).", ["kind", "outcome"], registry=PROCESS)
TASK_SECONDS = Histogram(
    "skyfleet_task_duration_seconds", "Time one task attempt spent on its site, by kind.", ["kind"],
    registry=PROCESS, buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))


def multiprocess_dir() -> str | None:
    """The directory shared by this host's processes, when multiprocess mode is on."""
    return os.environ.get(MULTIPROC_ENV) or None


def observe_http(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request under its route template (``route`` None: no route matched)."""
    HTTP_SECONDS.labels(method if method in METHODS else "OTHER", route or UNMATCHED, str(status)).observe(seconds)


def observe_task(kind: str, outcome: str, seconds: float) -> None:
    TASK_RUNS.labels(kind, outcome).inc()
    TASK_SECONDS.labels(kind).observe(seconds)


def process_registry() -> CollectorRegistry:
    """What this host's processes counted: the files of every process in multiprocess mode (a fresh
    registry per scrape, as prometheus-client requires; no ``process_*`` series then, they would not
    add up), else this process's own registry."""
    if multiprocess_dir() is None:
        return PROCESS
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of this host's process metrics followed by ``extra`` collectors (the fleet's)."""
    fleet = CollectorRegistry(auto_describe=False)
    for collector in extra:
        fleet.register(collector)
    return generate_latest(process_registry()) + generate_latest(fleet)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve this host's process metrics on ``host:port`` from a daemon thread (``skyfleet worker
    --metrics-port``): a worker has no API. No authentication: bind to loopback or a private network."""
    start_http_server(port, addr=host, registry=process_registry())
