"""The service's Prometheus counters and histograms, observed by the apps and the middleware.

``config.metrics`` serves them at ``/metrics`` with the gauges it reads from the database at
scrape time (the webhook queue, the periodic tasks); its docstring lists every metric.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "registry_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern, method and status class.",
    ["route", "method", "status"],
)
WEBHOOK_DELIVERIES = Counter(
    "registry_webhook_deliveries",
    "Tries of webhook deliveries, by outcome (SUCCESS, RETRY, FAILED).",
    ["outcome"],
)
ARTIFACT_COPY_SECONDS = Histogram(
    "registry_artifact_copy_duration_seconds",
    "Time to copy (and verify) one model version's artifacts into the store, failures included.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf")),
)
