"""Delivery end to end with a real Celery worker on Redis and a real receiver on 127.0.0.1:
every event type under both signature schemes, and the fault cases of docs/architecture.md,
"Webhooks"."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from registry import services as registry_services
from registry.models import ModelVersion
from tests.webhooks.conftest import CLOSED_PORT_BROKER, use_broker, wait_until
from tests.webhooks.snippets import readme_function
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookDelivery,
    WebhookFlavor,
    WebhookStatus,
)
from webhooks.payloads import MLFLOW_PAIRS
from webhooks.services.management import webhook_create
from webhooks.services.outbox import webhook_event_emit
from webhooks.services.sweep import webhook_deliveries_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_webhooks")]

SECRET = "s3cr3t-for-tests"


def _databricks_hook(admin, url, events, **kwargs) -> Webhook:
    return webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=events,
        url=url,
        secret=SECRET,
        **kwargs,
    )


def _mlflow_hook(admin, url, pairs, name="hook") -> Webhook:
    return webhook_create(
        actor=admin,
        flavor=WebhookFlavor.MLFLOW,
        name=name,
        events=[{"entity": e, "action": a} for e, a in pairs],
        url=url,
        secret=SECRET,
    )


def _every_event(admin) -> None:
    """Make the registry emit every event type once (the approval workflow's through the emit
    function it will call)."""
    registry_services.registered_model_create(
        actor=admin, name="m", tags=[{"key": "a", "value": "b"}]
    )
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    registry_services.model_version_tag_set(actor=admin, name="m", version="1", key="k", value="v")
    registry_services.model_version_tag_delete(actor=admin, name="m", version="1", key="k")
    registry_services.registered_model_alias_set(actor=admin, name="m", alias="prod", version="1")
    registry_services.registered_model_alias_delete(actor=admin, name="m", alias="prod")
    for stage in ("Staging", "Production", "Archived"):
        registry_services.model_version_stage_transition(
            actor=admin, name="m", version="1", stage=stage
        )
    model_version = ModelVersion.objects.select_related("registered_model").get()
    model = model_version.registered_model
    for stage in ("Staging", "Production", "Archived"):
        webhook_event_emit(
            event=EventType.TRANSITION_REQUEST_CREATED,
            registered_model=model,
            model_version=model_version,
            payload_data={"from_stage": "None", "to_stage": stage, "comment": "please"},
            actor=admin,
        )
    for event in (EventType.TRANSITION_REQUEST_APPROVED, EventType.TRANSITION_REQUEST_REJECTED):
        webhook_event_emit(
            event=event,
            registered_model=model,
            model_version=model_version,
            payload_data={"from_stage": "None", "to_stage": "Staging", "comment": "ok"},
            actor=admin,
        )
    for event in (
        EventType.ALIAS_REQUEST_CREATED,
        EventType.ALIAS_REQUEST_APPROVED,
        EventType.ALIAS_REQUEST_REJECTED,
    ):
        webhook_event_emit(
            event=event,
            registered_model=model,
            model_version=model_version,
            payload_data={"alias": "prod", "from_version": "", "to_version": "1"},
            actor=admin,
        )
    webhook_event_emit(
        event=EventType.COMMENT_CREATED,
        registered_model=model,
        model_version=model_version,
        payload_data={"comment": "looks good"},
        actor=admin,
    )
    webhook_event_emit(
        event=EventType.MODEL_VERSION_READY,
        registered_model=model,
        model_version=model_version,
        payload_data={"status": "READY"},
        actor=None,
    )
    webhook_event_emit(
        event=EventType.MODEL_VERSION_REGISTRATION_FAILED,
        registered_model=model,
        model_version=model_version,
        payload_data={"status": "FAILED_REGISTRATION", "status_message": "copy failed"},
        actor=None,
    )
    webhook_event_emit(
        event=EventType.WEBHOOK_DISABLED,
        registered_model=None,
        payload_data={"disabled_webhook_id": "x", "consecutive_failures": 2, "last_error": "e"},
        actor=None,
    )
    webhook_event_emit(
        event=EventType.TRAIL_HEAD_EXPORTED,
        registered_model=None,
        payload_data={"audit_head": "0" * 64, "audit_rows": 0, "trail_root": "1" * 64},
        actor=None,
    )
    registry_services.model_version_delete(actor=admin, name="m", version="1")
    registry_services.registered_model_delete(actor=admin, name="m")


def test_every_event_type_signed_under_both_schemes(admin, receiver, worker):
    verify_databricks = readme_function("verify_databricks")
    verify_mlflow = readme_function("verify_mlflow")
    _databricks_hook(admin, receiver.url + "/dbx", EventType.values)
    _mlflow_hook(admin, receiver.url + "/mlflow", list(MLFLOW_PAIRS.values()))

    _every_event(admin)

    # Three moves and three requests each fire the generic event and one per-stage event.
    expected_dbx = Counter(EventType.values)
    expected_dbx.update(["MODEL_VERSION_TRANSITIONED_STAGE", "TRANSITION_REQUEST_CREATED"] * 2)
    received = receiver.wait_for(expected_dbx.total() + len(MLFLOW_PAIRS))
    time.sleep(0.3)  # nothing more arrives
    assert len(receiver.received) == expected_dbx.total() + len(MLFLOW_PAIRS)
    dbx = [r for r in received if r.path.endswith("/dbx")]
    mlflow = [r for r in received if r.path.endswith("/mlflow")]
    assert Counter(r.json()["event"] for r in dbx) == expected_dbx
    assert all(verify_databricks(SECRET, r.body, r.headers) for r in dbx)
    assert not any(verify_databricks("wrong", r.body, r.headers) for r in dbx)
    assert sorted((r.json()["entity"], r.json()["action"]) for r in mlflow) == sorted(
        (e.lower(), a.lower()) for e, a in MLFLOW_PAIRS.values()
    )
    assert all(verify_mlflow(SECRET, r.body, r.headers) for r in mlflow)
    assert not any(verify_mlflow("wrong", r.body, r.headers) for r in mlflow)
    # The payload shapes of the references.
    transitioned = next(
        r.json() for r in dbx if r.json()["event"] == "MODEL_VERSION_TRANSITIONED_STAGE"
    )
    assert set(transitioned) == {
        "event",
        "webhook_id",
        "event_timestamp",
        "model_name",
        "version",
        "to_stage",
        "from_stage",
        "text",
    }
    created = next(r.json() for r in mlflow if r.json()["entity"] == "model_version")
    assert created["data"] == {
        "name": "m",
        "version": "1",
        "source": "s3://b/m/1",
        "run_id": None,
        "tags": {},
        "description": None,
    }
    # Every request names its delivery, and the log agrees: all delivered on the first try.
    ids = {r.headers["X-Registry-Delivery-Id"] for r in received}
    assert len(ids) == len(received)
    assert {r.headers["X-MLflow-Delivery-Id"] for r in mlflow} <= ids
    wait_until(
        lambda: (
            WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).count() == len(received)
        )
    )
    assert {str(c) for c in WebhookDelivery.objects.values_list("code", flat=True)} == ids


def test_server_error_then_success_is_delivered_on_retry(admin, receiver, worker):
    receiver.respond = lambda request, index: 500 if index == 0 else 200
    hook = _databricks_hook(admin, receiver.url, ["REGISTERED_MODEL_CREATED"])

    registry_services.registered_model_create(actor=admin, name="m")

    first, second = receiver.wait_for(2)
    assert first.headers["X-Registry-Delivery-Id"] == second.headers["X-Registry-Delivery-Id"]
    assert first.body == second.body
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(webhook=hook, status=DeliveryStatus.SUCCESS).first()
    )
    attempts = list(delivery.attempts.order_by("number"))
    assert [(a.number, a.outcome, a.response_status) for a in attempts] == [
        (1, AttemptOutcome.RETRY, 500),
        (2, AttemptOutcome.SUCCESS, 200),
    ]
    assert attempts[0].error == "HTTP 500"
    assert len(receiver.received) == 2


def test_receiver_down_fails_after_last_attempt_and_disables_the_hook(admin, receiver, worker):
    down_url = "http://127.0.0.1:1/hook"  # nothing listens there
    hook = _databricks_hook(admin, down_url, ["MODEL_VERSION_TAG_SET"], model_name=None)
    watcher = _databricks_hook(admin, receiver.url, ["WEBHOOK_DISABLED"])
    registry_services.registered_model_create(actor=admin, name="m")
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")

    for value in ("1", "2"):  # DISABLE_AFTER_FAILURES is 2 in the worker
        registry_services.model_version_tag_set(
            actor=admin, name="m", version="1", key="k", value=value
        )
        wait_until(
            lambda expected=int(value): (
                WebhookDelivery.objects.filter(webhook=hook, status=DeliveryStatus.FAILED).count()
                == expected
            ),
            timeout=30,
        )

    deliveries = WebhookDelivery.objects.filter(webhook=hook)
    assert deliveries.count() == 2
    for delivery in deliveries:
        attempts = list(delivery.attempts.order_by("number"))
        assert [a.outcome for a in attempts] == [
            AttemptOutcome.RETRY,
            AttemptOutcome.RETRY,
            AttemptOutcome.FAILED,
        ]
        assert all(a.response_status is None and a.error for a in attempts)
    hook.refresh_from_db()
    assert hook.status == WebhookStatus.DISABLED
    assert hook.consecutive_failures == 2
    assert "2 failed deliveries in a row" in hook.disabled_reason
    (notice,) = receiver.wait_for(1)
    assert notice.json()["event"] == "WEBHOOK_DISABLED"
    assert notice.json()["disabled_webhook_id"] == hook.code.hex
    assert watcher.code.hex == notice.json()["webhook_id"]

    # A disabled hook gets no more deliveries.
    registry_services.model_version_tag_set(actor=admin, name="m", version="1", key="k", value="3")
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 2


def test_broker_unreachable_at_commit_is_delivered_by_the_sweep(admin, receiver, redis_broker):
    _databricks_hook(admin, receiver.url, ["REGISTERED_MODEL_CREATED"])
    use_broker(CLOSED_PORT_BROKER)
    try:
        registry_services.registered_model_create(actor=admin, name="m")  # does not fail
    finally:
        use_broker(redis_broker)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert receiver.received == []

    from tests.webhooks.conftest import Worker

    worker = Worker().start()
    try:
        time.sleep(1.0)
        assert receiver.received == []  # nothing was queued
        assert webhook_deliveries_sweep() == {"reclaimed": 0, "late": 1, "queued": 1}
        (request,) = receiver.wait_for(1)
    finally:
        worker.stop()
    assert request.headers["X-Registry-Delivery-Id"] == str(delivery.code)
    wait_until(lambda: WebhookDelivery.objects.get().status == DeliveryStatus.SUCCESS)


def test_worker_killed_mid_delivery_is_delivered_after_restart(admin, receiver, start_worker):
    receiver.hold = threading.Event()
    _databricks_hook(admin, receiver.url, ["REGISTERED_MODEL_CREATED"])
    first_worker = start_worker()
    registry_services.registered_model_create(actor=admin, name="m")
    assert receiver.arrived.wait(30)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SENDING

    first_worker.kill()
    held, receiver.hold = receiver.hold, None
    held.set()  # the dead worker's request gets its answer into a closed socket
    start_worker()
    # The claim of the dead worker outlives its lease (3 s); the sweep takes it back.
    time.sleep(3.2)
    result = webhook_deliveries_sweep()
    assert result["reclaimed"] == 1
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).first()
    )
    requests = receiver.wait_for(2)
    assert len({r.headers["X-Registry-Delivery-Id"] for r in requests}) == 1
    assert [a.outcome for a in delivery.attempts.order_by("number")] == [
        AttemptOutcome.RETRY,
        AttemptOutcome.SUCCESS,
    ]
    assert "worker was lost" in delivery.attempts.order_by("number").first().error


def test_a_thousand_events_to_three_hooks_arrive_once_each(admin, receiver, start_worker):
    start_worker(concurrency=16)
    for index in range(3):
        _databricks_hook(admin, f"{receiver.url}/{index}", ["MODEL_VERSION_TAG_SET"])
    registry_services.registered_model_create(actor=admin, name="m")
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")

    for index in range(1000):
        registry_services.model_version_tag_set(
            actor=admin, name="m", version="1", key="k", value=str(index)
        )

    received = receiver.wait_for(3000, timeout=120)
    ids = [r.headers["X-Registry-Delivery-Id"] for r in received]
    assert len(ids) == 3000
    assert len(set(ids)) == 3000
    expected = {str(c) for c in WebhookDelivery.objects.values_list("code", flat=True)}
    assert set(ids) == expected
    per_hook = {f"/hook/{i}": 0 for i in range(3)}
    for r in received:
        per_hook[r.path] += 1
    assert per_hook == {"/hook/0": 1000, "/hook/1": 1000, "/hook/2": 1000}
    wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).count() == 3000
    )
