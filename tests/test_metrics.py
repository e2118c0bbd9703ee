"""``/metrics``: off by default, optionally behind a token, and what each metric counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from registry import services
from registry.artifacts.services import model_version_artifacts_copy
from webhooks.models import WebhookDelivery, WebhookFlavor, WebhookStatus
from webhooks.services.delivery import webhook_delivery_send
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    return settings


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_metrics_are_off_by_default(anonymous_api):
    assert anonymous_api.get("/metrics").status_code == 404


def test_metrics_in_text_format_with_the_latency_of_a_request(metrics_on, api, anonymous_api):
    labels = {"route": "api/2.0/mlflow/registered-models/search", "method": "GET", "status": "2xx"}
    before = _sample("registry_http_request_duration_seconds_count", labels)

    assert api.get("/api/2.0/mlflow/registered-models/search").status_code == 200
    response = anonymous_api.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "# TYPE registry_http_request_duration_seconds histogram" in text
    assert (
        'registry_http_request_duration_seconds_count{method="GET",'
        'route="api/2.0/mlflow/registered-models/search",status="2xx"}'
    ) in text
    assert _sample("registry_http_request_duration_seconds_count", labels) == before + 1
    assert "registry_webhook_queue_due_deliveries 0.0" in text


def test_routes_not_raw_paths_label_the_latency(metrics_on, api):
    assert api.get("/api/2.0/registry/webhooks/abc/deliveries").status_code == 404
    assert api.get("/no/such/page").status_code == 404
    routes = {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "registry_http_request_duration_seconds"
        for sample in metric.samples
    }
    assert "api/2.0/registry/webhooks/<str:webhook_id>/deliveries" in routes
    assert "<unmatched>" in routes
    assert not any("abc" in route or "no/such" in route for route in routes)


def test_a_token_guards_the_metrics(metrics_on, anonymous_api):
    metrics_on.METRICS_TOKEN = "s3cret"

    assert anonymous_api.get("/metrics").status_code == 401
    wrong = anonymous_api.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    right = anonymous_api.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert right.status_code == 200
    assert b"registry_http_request_duration_seconds" in right.content


def test_deliveries_are_counted_by_outcome_and_the_backlog_is_reported(
    metrics_on, user, django_user_model
):
    admin = django_user_model.objects.create_superuser(username="root", password="x")
    hook = webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=["REGISTERED_MODEL_CREATED"],
        url="https://example.com/hook",
        secret="k",
    )
    services.registered_model_create(actor=user, name="m")
    delivery = WebhookDelivery.objects.get(webhook=hook)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    scraped = APIClient().get("/metrics").content.decode()
    assert "registry_webhook_queue_due_deliveries 1.0" in scraped
    lag = next(
        float(line.split()[1])
        for line in scraped.splitlines()
        if line.startswith("registry_webhook_queue_oldest_due_seconds ")
    )
    assert lag >= 300

    # A disabled hook's delivery fails at once, with no network involved.
    type(hook).objects.filter(pk=hook.pk).update(status=WebhookStatus.DISABLED)
    before = _sample("registry_webhook_deliveries_total", {"outcome": "FAILED"})
    assert webhook_delivery_send(delivery_id=delivery.pk) == "FAILED"
    assert _sample("registry_webhook_deliveries_total", {"outcome": "FAILED"}) == before + 1
    assert (
        "registry_webhook_queue_due_deliveries 0.0" in APIClient().get("/metrics").content.decode()
    )


@pytest.mark.real_artifact_copy
def test_artifact_copies_are_timed(settings, user, tmp_path):
    (tmp_path / "store").mkdir()
    source = tmp_path / "sources" / "m"
    source.mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": [str(tmp_path / "sources")]}
    services.registered_model_create(actor=user, name="m")
    model_version = services.model_version_create(actor=user, name="m", source=source.as_uri())
    before = _sample("registry_artifact_copy_duration_seconds_count")

    model_version_artifacts_copy(model_version_id=model_version.pk)

    model_version.refresh_from_db()
    assert model_version.status == "READY"
    assert _sample("registry_artifact_copy_duration_seconds_count") == before + 1


def test_multiprocess_mode_reads_the_shared_folder(
    metrics_on, anonymous_api, monkeypatch, tmp_path
):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape sums the processes' files there (none yet) and
    still reports the queue, which comes from the database."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    response = anonymous_api.get("/metrics")

    assert response.status_code == 200
    assert b"registry_webhook_queue_due_deliveries 0.0" in response.content
