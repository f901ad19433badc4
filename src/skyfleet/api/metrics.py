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
from skyfleet.domains.indicators import service as indicators
from skyfleet.domains.observe.service import FleetFigures, fleet_figures

router = APIRouter(tags=["meta"])


def _gauge(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


MIB, GIB = 1024.0 ** 2, 1024.0 ** 3  # Nova's memory_mb and local_gb are MiB and GiB

# Indicator (docs/observe.md, "Indicators") -> (family, help, scale to the base unit). ``api.<service>.*``
# are one family each with a ``service`` label; ``audit.latency_ms`` is skyfleet_site_latency_seconds already.
SITE_INDICATOR_FAMILIES: dict[str, tuple[str, str, float]] = {
    "capacity.vcpus": ("skyfleet_site_vcpus", "vCPUs of the site's hypervisors (last full inventory refresh).", 1.0),
    "capacity.vcpus_used": ("skyfleet_site_vcpus_used", "vCPUs used on the site's hypervisors.", 1.0),
    "capacity.memory_mb": ("skyfleet_site_memory_bytes", "Memory of the site's hypervisors, in bytes.", MIB),
    "capacity.memory_mb_used": ("skyfleet_site_memory_used_bytes", "Memory used on the site's hypervisors, in "
                                "bytes.", MIB),
    "capacity.local_gb": ("skyfleet_site_disk_bytes", "Local disk of the site's hypervisors, in bytes.", GIB),
    "capacity.local_gb_used": ("skyfleet_site_disk_used_bytes", "Local disk used on the site's hypervisors, in "
                               "bytes.", GIB),
    "api.latency_ms": ("skyfleet_site_api_latency_seconds", "Time the site's service took to answer its version "
                       "document at the last sampled health audit.", 0.001),
    "api.error": ("skyfleet_site_api_error", "1 when the site's service failed or could not be reached at the last "
                  "sampled health audit, else 0.", 1.0),
    "audit.duration_ms": ("skyfleet_site_audit_duration_seconds", "How long the last sampled health probe of the "
                          "site took.", 0.001),
}


def _scaled(value: float, scale: float) -> float:
    """``value`` in the base unit, without the float noise of ms * 0.001 (0.0020499999999999997)."""
    return value * scale if scale >= 1 else round(value * scale, 9)


def indicator_families(values: dict[tuple[str, str], float]) -> Iterator[Metric]:
    """One gauge family per indicator kind, in base units; every family is declared, even when empty."""
    out: dict[str, dict[tuple[str, ...], float]] = {key: {} for key in SITE_INDICATOR_FAMILIES}
    for (site, name), value in values.items():
        parts = name.split(".")
        if parts[0] == "api" and len(parts) == 3:
            out[f"api.{parts[2]}"][(site, parts[1])] = _scaled(value, SITE_INDICATOR_FAMILIES[f"api.{parts[2]}"][2])
        elif name in SITE_INDICATOR_FAMILIES:
            out[name][(site,)] = _scaled(value, SITE_INDICATOR_FAMILIES[name][2])
    for key, (family, doc, _) in SITE_INDICATOR_FAMILIES.items():
        labels = ["site", "service"] if key.startswith("api.") else ["site"]
        yield _gauge(family, doc + " Capped by metrics_site_series_max.", labels, out[key])


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
    yield from indicator_families(f.site_indicators or {})


class FleetCollector(Collector):
    """Reads the fleet from the database at each scrape (one short transaction)."""

    def __init__(self, factory: sessionmaker[Session], *, site_series_max: int, quota_series_max: int,
                 indicator_window: int = 1200) -> None:
        self.factory = factory
        self.site_series_max = site_series_max
        self.quota_series_max = quota_series_max
        self.indicator_window = indicator_window

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        with transaction(self.factory) as session:
            figures = fleet_figures(session, now=utcnow(), site_series_max=self.site_series_max,
                                    quota_series_max=self.quota_series_max,
                                    indicator_window=self.indicator_window)
        yield from families(figures)
        yield GaugeMetricFamily("skyfleet_fleet_scrape_seconds", "Time the database reading of this scrape took.",
                                value=time.perf_counter() - started)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics: this host's processes and the fleet (fleet admins or the scrape token)."""
    s = runtime.settings
    fleet = FleetCollector(runtime.factory, site_series_max=s.metrics_site_series_max,
                           quota_series_max=s.metrics_quota_series_max,
                           indicator_window=indicators.recent_window(
                               sample_interval=s.indicator_interval, audit_interval=s.audit_interval,
                               full_interval=s.inventory_full_interval))
    return Response(telemetry.exposition([fleet]), media_type=CONTENT_TYPE_LATEST)
