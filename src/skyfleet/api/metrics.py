"""``GET /metrics``: Prometheus's view of Skyfleet, for fleet admins and a configured scrape token.

Why it exists: operators of fleets watch Prometheus and Grafana, not an API. One scrape returns what
this host's processes counted (``skyfleet.telemetry``: HTTP requests by route template and status,
task attempts by kind and outcome; summed over processes in multiprocess mode) and the fleet's state
read from the database at that moment (``skyfleet.domains.observe``), with per-site and per-project
series capped by ``metrics_site_series_max`` and ``metrics_quota_series_max``. Who may read it is
decided by ``access.POLICY`` like every route (docs/security.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from skyfleet import telemetry
from skyfleet.api.deps import RuntimeDep
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.observe.service import FleetFigures, fleet_figures

router = APIRouter(tags=["meta"])


def _gauge(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def families(f: FleetFigures) -> Iterator[Metric]:
    """The metric families of one fleet reading (names listed in docs/observe.md)."""
    yield _gauge("skyfleet_sites", "Managed sites by availability.", ["availability"],
                 {(k,): v for k, v in f.sites_by_availability.items()})
    yield GaugeMetricFamily("skyfleet_sites_unmanaged", "Registered sites that get no work.", value=f.unmanaged_sites)
    yield _gauge("skyfleet_metrics_series_capped", "1 when per-site or per-project series are left out because the "
                 "fleet has more than the configured maximum (only aggregates are exported).", ["family"],
                 {("site",): float(f.sites is None), ("project",): float(f.quota_ratios is None)})
    sites = f.sites or []
    yield _gauge("skyfleet_site_availability", "1 for each managed site, labelled with its availability "
                 "(capped by metrics_site_series_max).", ["site", "availability"],
                 {(s.name, s.availability): 1.0 for s in sites})
    yield _gauge("skyfleet_site_latency_seconds", "Keystone authentication time of the last health audit.",
                 ["site"], {(s.name,): s.latency_seconds for s in sites if s.latency_seconds is not None})
    yield _gauge("skyfleet_inventory_age_seconds", "Seconds since the site's inventory was last refreshed.",
                 ["site"], {(s.name,): s.inventory_age_seconds for s in sites if s.inventory_age_seconds is not None})
    yield GaugeMetricFamily("skyfleet_inventory_oldest_age_seconds", "Age of the stalest refreshed inventory "
                            "among managed sites.", value=f.inventory_oldest_age_seconds)
    yield GaugeMetricFamily("skyfleet_inventory_never_refreshed_sites", "Managed sites whose inventory was never "
                            "refreshed.", value=f.inventory_never_refreshed)
    yield _gauge("skyfleet_operations", "Operations by kind and state.", ["kind", "state"],
                 {k: float(v) for k, v in f.operations.items()})
    yield _gauge("skyfleet_tasks", "Per-site tasks by kind and state.", ["kind", "state"],
                 {k: float(v) for k, v in f.tasks.items()})
    yield GaugeMetricFamily("skyfleet_queue_due_tasks", "Pending tasks due now (waiting for a worker).",
                            value=f.queue_due)
    yield GaugeMetricFamily("skyfleet_queue_oldest_due_age_seconds", "How long the oldest due task has waited "
                            "for a worker (0: none waits).", value=f.queue_oldest_due_age_seconds)
    yield GaugeMetricFamily("skyfleet_queue_waiting_tasks", "Pending tasks due later (backing off).",
                            value=f.queue_waiting)
    yield GaugeMetricFamily("skyfleet_task_leases_expired", "Running tasks whose lease expired (their worker "
                            "stopped renewing it).", value=f.leases_expired)
    yield GaugeMetricFamily("skyfleet_quota_projects", "Projects under global quota.", value=f.quota_projects)
    yield GaugeMetricFamily("skyfleet_quota_projects_breached", "Projects using more than a global limit.",
                            value=f.quota_projects_breached)
    yield _gauge("skyfleet_quota_usage_ratio", "Usage summed over sites divided by the global limit (capped by "
                 "metrics_quota_series_max).", ["project", "resource"],
                 {k: v for k, v in (f.quota_ratios or {}).items()})


class FleetCollector(Collector):
    """Reads the fleet from the database at each scrape (one short transaction)."""

    def __init__(self, factory: sessionmaker[Session], *, site_series_max: int, quota_series_max: int) -> None:
        self.factory = factory
        self.site_series_max = site_series_max
        self.quota_series_max = quota_series_max

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        with transaction(self.factory) as session:
            figures = fleet_figures(session, now=utcnow(), site_series_max=self.site_series_max,
                                    quota_series_max=self.quota_series_max)
        yield from families(figures)
        yield GaugeMetricFamily("skyfleet_fleet_scrape_seconds", "Time the database reading of this scrape took.",
                                value=time.perf_counter() - started)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics: this host's processes and the fleet (fleet admins or the scrape token)."""
    s = runtime.settings
    fleet = FleetCollector(runtime.factory, site_series_max=s.metrics_site_series_max,
                           quota_series_max=s.metrics_quota_series_max)
    return Response(telemetry.exposition([fleet]), media_type=CONTENT_TYPE_LATEST)
