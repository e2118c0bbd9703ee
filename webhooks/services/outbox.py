"""The outbox: events recorded in the writer's transaction, their deliveries queued on commit.

:func:`webhook_event_emit`, called by a registry service inside its transaction, writes a
:class:`WebhookEvent` per event type and a ``PENDING`` :class:`WebhookDelivery` per matching
``ACTIVE`` hook, and queues one task per delivery when the transaction commits. It renders
nothing: a body (which a payload template can make large) is built by the worker
(webhooks/services/delivery.py).

The send task is queued by its name through the Celery app, not imported: the tasks module is
an edge that calls these services, so the services do not import it (docs/architecture.md,
"Webhooks"). The task declares the same name (webhooks/tasks.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kernel.queueing import enqueue
from registry.models import ModelVersion, RegisteredModel
from webhooks import payloads
from webhooks.conf import webhook_settings
from webhooks.models import (
    WebhookDelivery,
    WebhookEvent,
    WebhookStatus,
    WebhookSubscription,
)

#: The name of the task that makes one try of one delivery (``delivery_id`` its argument).
SEND_TASK = "webhooks.tasks.webhook_delivery_send_task"


def actor_name(actor: Any) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return ""
    return str(actor.get_username())


def webhook_event_emit(
    *,
    event: str,
    registered_model: RegisteredModel | None,
    model_version: ModelVersion | None = None,
    payload_data: dict[str, Any] | None = None,
    actor: Any,
    under_lock: bool = False,
) -> list[int]:
    """Record an event and a delivery per subscribed ACTIVE hook; send them after commit.

    Call it inside the transaction of the change it reports, so the event exists exactly when
    the change does. The deliveries hold no body yet: the worker renders it from the event, so
    a hook's template, however large its result, never slows down or fails the change.
    ``payload_data`` holds the event's own fields (``to_stage``, ``key``, ...); the model name
    and version come from the objects. A stage event also fires its per-stage variant. Returns
    the ids of the deliveries written.

    ``under_lock``: ``registered_model`` was read under its row lock (``SELECT ... FOR
    UPDATE``) in this transaction, which still holds it. Its ``hooks_may_match`` is then
    current until the commit, and when it is False no hook can match: the lookup is not made
    (webhooks/services/matching.py; docs/decisions/0021-writes-in-fewer-statements.md).
    """
    if not webhook_settings().enabled:
        return []
    if under_lock and registered_model is not None and not registered_model.hooks_may_match:
        return []
    data: dict[str, Any] = {}
    if registered_model is not None:
        data["model_name"] = registered_model.name
    if model_version is not None:
        data["version"] = str(model_version.version)
    data.update(payload_data or {})
    event_types = payloads.expand(event, data)
    scope = Q(webhook__registered_model__isnull=True)
    if registered_model is not None and registered_model.pk is not None:
        scope |= Q(webhook__registered_model=registered_model)
    subscriptions = list(
        WebhookSubscription.objects.filter(
            scope, event_type__in=event_types, webhook__status=WebhookStatus.ACTIVE
        ).select_related("webhook")
    )
    if not subscriptions:
        return []
    now = timezone.now()
    username = actor_name(actor)
    with transaction.atomic(savepoint=False):
        events = {
            event_type: WebhookEvent(
                event_type=event_type,
                model_name=data.get("model_name", ""),
                version=data.get("version", ""),
                data=data,
                actor_username=username,
                created_at=now,
            )
            for event_type in event_types
            if any(s.event_type == event_type for s in subscriptions)
        }
        WebhookEvent.objects.bulk_create(events.values())
        deliveries = []
        for subscription in subscriptions:
            code = uuid.uuid4()
            deliveries.append(
                WebhookDelivery(
                    code=code,
                    webhook=subscription.webhook,
                    event=events[subscription.event_type],
                    body="",
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        WebhookDelivery.objects.bulk_create(deliveries)
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return ids


def enqueue_deliveries(ids: list[int], *, countdown: float | None = None) -> int:
    """Queue a send task per delivery; returns how many were queued.

    A broker that cannot be reached must not fail the change that was already committed: the
    rows are there, and the sweep queues them once the broker is back.
    """
    # By name, as the task declares it (the outbox does not import the tasks module), with its
    # options: the message is the same whether or not this process has imported the task.
    send = current_app.signature(SEND_TASK, options={"ignore_result": True})
    return enqueue(send, [(delivery_id,) for delivery_id in ids], countdown=countdown)
