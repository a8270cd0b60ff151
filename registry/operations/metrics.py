"""Prometheus metrics: HTTP by endpoint and status (prometheus-flask-exporter) and our own.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its samples there and
``/metrics`` aggregates them, so the figures are the same whichever worker answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_flask_exporter import PrometheusMetrics

_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def _multiprocess_directory() -> None:
    """Make the multiprocess directory exist before any metric writes there, or do without.

    gunicorn's preload imports the app before its on_starting hook runs, and commands run with
    the server's environment (``registry init`` before systemd starts gunicorn, the migration
    job reading the same ConfigMap) have no use for the directory and may not be able to make
    it: they keep their metrics in memory instead of failing.
    """
    directory = os.environ.get(_MULTIPROCESS)
    if not directory:
        return
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError:
        del os.environ[_MULTIPROCESS]
        # prometheus_client chose its value class when it was imported; choose again
        values.ValueClass = values.get_value_class()


_multiprocess_directory()


def init_http_metrics(app: Flask) -> CollectorRegistry:
    """Request counts and durations by endpoint and status for this app, in its own registry.

    One registry per app: prometheus-flask-exporter binds its metrics to the first app it
    sees, and the tests create many apps in one process.
    """
    registry = CollectorRegistry(auto_describe=True)
    PrometheusMetrics(
        app, registry=registry, path=None, group_by="endpoint", defaults_prefix="registry"
    )

    @app.after_request
    def _pool(response: Any) -> Any:
        # each worker reports its own pool; the gauge sums the live workers' figures
        observe_pool(app.extensions["registry"].db.engine)
        return response

    return registry


def exposition(app_registry: CollectorRegistry) -> bytes:
    """The text exposition of every metric: all workers' under gunicorn, else this process's."""
    if os.environ.get(_MULTIPROCESS):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
    return generate_latest(REGISTRY) + generate_latest(app_registry)


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


class HttpMetrics:
    """The HTTP request metrics of an app, for a route answered outside Flask's dispatch."""

    def __init__(self, duration: Any, total: Any) -> None:
        self.duration = duration
        self.total = total

    @classmethod
    def of(cls, app_registry: CollectorRegistry) -> HttpMetrics:
        """The duration histogram and request counter prometheus-flask-exporter made."""
        # prometheus_client keeps its collectors by metric name; there is no public lookup
        collectors = app_registry._names_to_collectors
        return cls(
            collectors["registry_http_request_duration_seconds"],
            collectors["registry_http_request_total"],
        )

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """One answered request, as the exporter's after-request hook records it."""
        self.duration.labels(method=method, endpoint=endpoint, status=status).observe(seconds)
        self.total.labels(method=method, status=status).inc()
