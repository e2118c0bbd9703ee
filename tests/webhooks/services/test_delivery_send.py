"""The worker's hot path (``webhook_delivery_send``) on PostgreSQL: two statements per try,
conditional on the claim, with the asynchronous commit confined to the worker's own
statements."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection

from registry import services as registry_services
from webhooks import http
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookFlavor,
)
from webhooks.services import outbox
from webhooks.services.delivery import webhook_delivery_send
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.usefixtures("fast_webhooks")


def _delivery(admin, url: str) -> WebhookDelivery:
    hook = webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=["REGISTERED_MODEL_CREATED"],
        url=url,
        secret="k",
    )
    registry_services.registered_model_create(actor=admin, name="m")
    return WebhookDelivery.objects.select_related("webhook").get(webhook=hook)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_successful_try_is_two_statements(admin, receiver, django_assert_num_queries):
    delivery = _delivery(admin, receiver.url)
    delivery.webhook.consecutive_failures = 1
    delivery.webhook.save(update_fields=["consecutive_failures"])

    # The claim (with the hook and the event) and the record (attempt, state, failure count).
    with django_assert_num_queries(2):
        assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.SUCCESS

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.claim_token) == (
        DeliveryStatus.SUCCESS,
        1,
        None,
    )
    assert delivery.delivered_at is not None
    assert delivery.last_response_status == 200
    (attempt,) = delivery.attempts.all()
    assert (attempt.number, attempt.outcome, attempt.response_status, attempt.error) == (
        1,
        AttemptOutcome.SUCCESS,
        200,
        "",
    )
    assert attempt.response_excerpt == '{"ok": true}'
    delivery.webhook.refresh_from_db()
    assert delivery.webhook.consecutive_failures == 0
    (request,) = receiver.received
    assert request.headers["X-Registry-Delivery-Id"] == str(delivery.code)
    assert request.body == delivery.body.encode()
    # Inside the caller's (here: the test's) transaction nothing was relaxed.
    assert _synchronous_commit() == "on"


@pytest.mark.django_db
def test_a_claim_taken_back_during_the_try_is_not_moved_on(admin, receiver):
    delivery = _delivery(admin, receiver.url)

    def sweep_takes_the_claim_back(url, **kwargs):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, claim_token=None
        )
        return http.HttpResult(200, "", "", 5, False)

    with mock.patch.object(
        http, "post", autospec=True, side_effect=sweep_takes_the_claim_back
    ) as post:
        assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.SUCCESS

    post.assert_called_once()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == (DeliveryStatus.PENDING, None)
    # The try happened, so it is in the log all the same.
    assert list(WebhookDeliveryAttempt.objects.values_list("number", "outcome")) == [
        (1, AttemptOutcome.SUCCESS)
    ]


@pytest.mark.django_db
def test_a_retry_keeps_the_delivery_and_queues_it_again(
    admin, receiver, django_capture_on_commit_callbacks
):
    receiver.respond = lambda request, index: 503
    delivery = _delivery(admin, receiver.url)

    with (
        mock.patch.object(outbox, "enqueue_deliveries", autospec=True) as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.RETRY

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_response_status, delivery.last_error) == (
        DeliveryStatus.PENDING,
        503,
        "HTTP 503",
    )
    enqueue.assert_called_once()
    assert enqueue.call_args.args == ([delivery.pk],)
    assert 0.0 < enqueue.call_args.kwargs["countdown"] <= 0.2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_broker")
def test_the_asynchronous_commit_ends_with_the_worker_statements(admin, receiver):
    delivery = _delivery(admin, receiver.url)

    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.SUCCESS

    # Autocommit, as in the worker: each statement was its own transaction, and the setting
    # was local to it, so the connection's next transaction commits durably again.
    assert _synchronous_commit() == "on"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCESS
