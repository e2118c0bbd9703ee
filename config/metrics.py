"""Operational metrics in the Prometheus text format at ``/metrics`` (docs/operations.md).

Off unless ``METRICS_ENABLED``; with ``METRICS_TOKEN`` set, a scrape needs
``Authorization: Bearer <token>``. What is measured:

- ``registry_http_request_duration_seconds``: a histogram of request latency by the URL
  pattern's route (never the raw path, so the label set stays bounded), method and status class;
- ``registry_webhook_deliveries_total``: tries of webhook deliveries by outcome;
- ``registry_webhook_queue_due_deliveries`` / ``registry_webhook_queue_oldest_due_seconds``:
  deliveries that are due but not sent, and how long the oldest has waited, read from the
  database at scrape time (one aggregate over the ``wh_delivery_due`` index);
- ``registry_artifact_copy_duration_seconds``: how long copies of versions' artifacts take;
- ``registry_periodic_task_last_success_timestamp_seconds`` / ``..._interval_seconds`` /
  ``registry_periodic_task_late``: when each of beat's sweeps last succeeded, how often it runs,
  and whether it is late (config/periodic.py), read from the database at scrape time.
- ``registry_trail_head_info`` / ``registry_trail_rows``: the heads of the hash chains of the
  audit entries and of the activity trail (docs/decisions/0017-tamper-evident-trail.md) and
  their lengths, read from the database at scrape time, so that a monitoring system keeps a
  history of them outside the registry's database.

The counters and histograms are defined in ``kernel.metrics``, where the apps that observe them
import them; this module serves them and reads the gauges. They live in the process that
observes them: gunicorn workers and Celery workers are separate processes. With
``PROMETHEUS_MULTIPROC_DIR`` set (an empty folder, wiped at start, shared only by processes of
one PID namespace: the files are named by process id), prometheus_client writes them to files
there and any process's ``/metrics`` reports the sum over all of them; without it, each scrape
sees only the worker that answers it.
https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config.periodic import LATE_AFTER_INTERVALS
from kernel.metrics import REQUEST_SECONDS

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class _DeliveryQueueCollector(Collector):
    """The webhook outbox's backlog, read from the database when scraped."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count, Min
        from django.utils import timezone

        from webhooks.models import DeliveryStatus, WebhookDelivery

        now = timezone.now()
        due = WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        ).aggregate(count=Count("id"), oldest=Min("next_attempt_at"))
        yield GaugeMetricFamily(
            "registry_webhook_queue_due_deliveries",
            "Webhook deliveries that are due but not sent yet.",
            value=due["count"],
        )
        lag = (now - due["oldest"]).total_seconds() if due["oldest"] else 0.0
        yield GaugeMetricFamily(
            "registry_webhook_queue_oldest_due_seconds",
            "How long the oldest due, unsent webhook delivery has waited (0 when none).",
            value=max(lag, 0.0),
        )


class _PeriodicTaskCollector(Collector):
    """When each of beat's periodic tasks last succeeded (config/periodic.py), read from the
    database when scraped, so complete whichever process answers."""

    def collect(self) -> Iterator[Metric]:
        from config.periodic import periodic_task_states

        states = periodic_task_states()
        last = GaugeMetricFamily(
            "registry_periodic_task_last_success_timestamp_seconds",
            "Unix time of the last run of a periodic task that finished without an error "
            "(0: none yet).",
            labels=["task"],
        )
        interval = GaugeMetricFamily(
            "registry_periodic_task_interval_seconds",
            "How often beat sends a periodic task.",
            labels=["task"],
        )
        late = GaugeMetricFamily(
            "registry_periodic_task_late",
            "1 when a periodic task's last success is older than "
            f"{LATE_AFTER_INTERVALS} of its intervals, or it never succeeded; else 0.",
            labels=["task"],
        )
        for state in states:
            name = state.task.name
            stamp = state.last_succeeded_at.timestamp() if state.last_succeeded_at else 0.0
            last.add_metric([name], stamp)
            interval.add_metric([name], state.task.interval)
            late.add_metric([name], 1.0 if state.late else 0.0)
        yield last
        yield interval
        yield late


class _TrailHeadCollector(Collector):
    """The heads of the trail's and the audit entries' hash chains, read when scraped."""

    def collect(self) -> Iterator[Metric]:
        from registry.selectors.trail import trail_heads

        heads = trail_heads()
        yield InfoMetricFamily(
            "registry_trail_head",
            "The last row_hash of the audit chain and the hash of every model trail's head.",
            value={"audit_head": heads.audit_head, "trail_root": heads.trail_root},
        )
        rows = GaugeMetricFamily(
            "registry_trail_rows", "Rows in each hash-chained table.", labels=["chain"]
        )
        rows.add_metric(["audit"], heads.audit_rows)
        rows.add_metric(["trail"], heads.trail_rows)
        yield rows


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    from_database = CollectorRegistry(auto_describe=False)
    from_database.register(_DeliveryQueueCollector())
    from_database.register(_PeriodicTaskCollector())
    from_database.register(_TrailHeadCollector())
    return generate_latest(registry) + generate_latest(from_database)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: 404 when metrics are off, 401 without the configured token."""
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are disabled.")
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Observes every request's latency under its route (``<unmatched>`` when none matched)."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        if not settings.METRICS_ENABLED:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "<unmatched>"
        method = request.method if request.method in _METHODS else "other"
        REQUEST_SECONDS.labels(
            route=route, method=method, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
