"""Prometheus metrics: HTTP by endpoint and status (prometheus-flask-exporter) and our own.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its samples there and
``/metrics`` aggregates them, so the figures are the same whichever worker answers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

_exporter_class: Any = (
    GunicornPrometheusMetrics if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else PrometheusMetrics
)
http_metrics = _exporter_class.for_app_factory(
    group_by="endpoint", path="/metrics", defaults_prefix="registry"
)

SUBMISSIONS = Counter(
    "registry_submissions_total", "Examination submissions by outcome", ["outcome"]
)
VERIFICATIONS = Counter(
    "registry_verifications_total", "Certificate verifications by result", ["result"]
)
EXTRACT_SECONDS = Histogram(
    "registry_surveillance_extract_seconds", "Time to build a surveillance extract", ["format"]
)
DB_POOL = Gauge(
    "registry_db_pool_connections",
    "Database pool connections by state",
    ["state"],
    multiprocess_mode="livesum",
)


def observe_pool(engine: Any) -> None:
    """Record the pool's checked-out and idle connections (QueuePool engines only)."""
    pool = engine.pool
    if hasattr(pool, "checkedout"):
        DB_POOL.labels("checked_out").set(pool.checkedout())
        DB_POOL.labels("idle").set(pool.checkedin())
