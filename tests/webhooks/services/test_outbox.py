"""The outbox: events and deliveries written with the change, sent by calling the task's
service directly (no worker), retries, classification, templates and signatures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from kernel.errors import RegistryError
from registry import services as registry_services
from tests.webhooks.conftest import CLOSED_PORT_BROKER, use_broker
from webhooks import payloads, signing
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookFlavor,
    WebhookStatus,
)
from webhooks.services.delivery import backoff_seconds, webhook_delivery_send
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.usefixtures("fast_webhooks")


def _hook(admin, url, events, **kwargs):
    return webhook_create(
        actor=admin, flavor=WebhookFlavor.DATABRICKS, events=events, url=url, **kwargs
    )


@pytest.mark.django_db
def test_event_rows_are_part_of_the_change(admin, django_capture_on_commit_callbacks):
    _hook(admin, "https://example.com/h", ["REGISTERED_MODEL_CREATED"])
    seen_inside = []

    def change_then_fail():
        with transaction.atomic():
            registry_services.registered_model_create(actor=admin, name="rolled-back")
            seen_inside.append(WebhookDelivery.objects.count())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert seen_inside == [1]
    assert WebhookEvent.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0

    with django_capture_on_commit_callbacks() as callbacks:
        registry_services.registered_model_create(actor=admin, name="kept")
    assert len(callbacks) == 1  # the enqueue, only after commit
    delivery = WebhookDelivery.objects.select_related("event").get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.event.data["model_name"] == "kept"
    # The body is the worker's to render, on the first try.
    assert delivery.body == ""


@pytest.mark.django_db
def test_only_active_hooks_in_scope_get_deliveries(admin, django_capture_on_commit_callbacks):
    registry_services.registered_model_create(actor=admin, name="a")
    registry_services.registered_model_create(actor=admin, name="b")
    for status in ("ACTIVE", "TEST_MODE", "DISABLED"):
        _hook(admin, f"https://example.com/{status}", ["MODEL_VERSION_CREATED"], status=status)
    on_b = _hook(admin, "https://example.com/b", ["MODEL_VERSION_CREATED"], model_name="b")

    with django_capture_on_commit_callbacks() as callbacks:
        registry_services.model_version_create(actor=admin, name="a", source="s3://x/a/1")
    assert [d.webhook.url for d in WebhookDelivery.objects.all()] == ["https://example.com/ACTIVE"]
    registry_services.model_version_create(actor=admin, name="b", source="s3://x/b/1")
    assert WebhookDelivery.objects.filter(webhook=on_b).count() == 1
    assert len(callbacks) == 1

    # Nothing subscribed: nothing written, nothing queued.
    with django_capture_on_commit_callbacks() as callbacks:
        registry_services.registered_model_alias_set(actor=admin, name="a", alias="x", version="1")
    assert callbacks == []
    assert WebhookEvent.objects.filter(event_type="MODEL_VERSION_ALIAS_CREATED").count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_does_not_fail_the_api_write(admin, api, user):
    user.is_superuser = True
    user.save()
    _hook(admin, "https://example.com/h", ["REGISTERED_MODEL_CREATED"])
    from config.celery import app

    old = app.conf.broker_url
    use_broker(CLOSED_PORT_BROKER)
    try:
        response = api.post(
            "/api/2.0/mlflow/registered-models/create", {"name": "m"}, format="json"
        )
    finally:
        use_broker(old)
    assert response.status_code == 200, response.content
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING


@pytest.mark.django_db
def test_retry_classification_and_backoff(admin, receiver):
    statuses = iter([500, 429, 404])
    receiver.respond = lambda request, index: next(statuses)
    hook = _hook(admin, receiver.url, ["REGISTERED_MODEL_CREATED"], secret="k")
    registry_services.registered_model_create(actor=admin, name="m")
    delivery = WebhookDelivery.objects.get()

    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.RETRY
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0.0 < wait <= 0.2  # base 0.2 s, half to all of it
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=60)
    )
    assert webhook_delivery_send(delivery_id=delivery.pk) == "skipped"  # not due
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.RETRY
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.FAILED
    assert webhook_delivery_send(delivery_id=delivery.pk) == "skipped"  # final

    attempts = list(delivery.attempts.order_by("number"))
    assert [(a.number, a.outcome, a.response_status) for a in attempts] == [
        (1, "RETRY", 500),
        (2, "RETRY", 429),
        (3, "FAILED", 404),
    ]
    assert len({r.headers["X-Registry-Delivery-Id"] for r in receiver.received}) == 1
    assert all(
        signing.databricks_verify("k", r.body, r.headers["X-Databricks-Signature"])
        for r in receiver.received
    )
    hook.refresh_from_db()
    assert (hook.consecutive_failures, hook.status) == (1, WebhookStatus.ACTIVE)


def test_backoff_is_capped_and_jittered(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "BACKOFF_BASE": 10.0, "BACKOFF_MAX": 60.0}
    assert 5.0 <= backoff_seconds(1) <= 10.0
    assert 20.0 <= backoff_seconds(3) <= 40.0
    assert 30.0 <= backoff_seconds(20) <= 60.0


def test_mlflow_signature_matches_captured_deliveries():
    """Deliveries an MLflow 3.18 server sent with the secret ``s3cr3t``, captured on the wire."""
    from pathlib import Path

    capture = Path(__file__).resolve().parent.parent / "data" / "mlflow_deliveries.jsonl"
    lines = capture.read_text().splitlines()
    assert len(lines) == 6
    for line in lines:
        delivery = json.loads(line)
        headers = delivery["headers"]
        assert (
            signing.mlflow_signature(
                "s3cr3t",
                headers["X-MLflow-Delivery-Id"],
                headers["X-MLflow-Timestamp"],
                delivery["body"].encode(),
            )
            == headers["X-MLflow-Signature"]
        )


def test_mlflow_payload_shapes_match_the_captures():
    at = timezone.now()
    body = payloads.mlflow_payload(
        event_type="MODEL_VERSION_ALIAS_CREATED",
        data={"model_name": "m", "version": "1", "alias": "prod"},
        at=at,
    )
    assert body == {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": at.isoformat(),
        "data": {"name": "m", "alias": "prod", "version": "1"},
    }


def test_templates_escape_event_fields():
    template = payloads.validate_template(
        '{"ref": "main", "inputs": {"model": "${model_name}", "title": "deploy ${model_name} '
        'v${version}", "n": "${event_timestamp}", "all": "${payload}"}}',
        max_body_bytes=65536,
    )
    nasty = 'x", "ref": "evil\\\n'
    rendered = json.loads(
        payloads.render_template(
            template,
            {"model_name": nasty, "version": "3", "event_timestamp": 5, "payload": {"a": [1]}},
            max_bytes=65536,
        )
    )
    assert rendered == {
        "ref": "main",
        "inputs": {"model": nasty, "title": f"deploy {nasty} v3", "n": 5, "all": {"a": [1]}},
    }
    for bad in ('{"a": "${secret}"}', "{not json", 5):
        with pytest.raises(RegistryError):
            payloads.validate_template(bad, max_body_bytes=65536)


@pytest.mark.django_db
def test_template_hook_sends_the_rendered_body(admin, receiver):
    _hook(
        admin,
        receiver.url,
        ["MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"],
        payload_template='{"ref": "main", "inputs": {"model": "${model_name}", '
        '"version": "${version}", "delivery": "${delivery_id}"}}',
        authorization="Bearer gh",
    )
    registry_services.registered_model_create(actor=admin, name='we"ird')
    registry_services.model_version_create(actor=admin, name='we"ird', source="s3://x/1")
    registry_services.model_version_stage_transition(
        actor=admin, name='we"ird', version="1", stage="Production"
    )
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_send(delivery_id=delivery.pk)
    (request,) = receiver.received
    assert request.json() == {
        "ref": "main",
        "inputs": {"model": 'we"ird', "version": "1", "delivery": str(delivery.code)},
    }
    assert request.headers["Authorization"] == "Bearer gh"
