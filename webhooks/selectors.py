"""Every read of the webhooks app for output: hooks a caller may manage, the delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Min, OuterRef, Prefetch, Q, QuerySet, Subquery

from accounts.permissions import manageable_webhooks_q, require_can_manage_webhook
from kernel.errors import RegistryError
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookStatus,
)


def webhook_not_found(webhook_id: Any) -> RegistryError:
    """No hook has this id (404 ``RESOURCE_DOES_NOT_EXIST``)."""
    return RegistryError.not_found(f"Webhook with ID {webhook_id} not found.")


def _parse_code(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _with_output_relations(queryset: QuerySet[Webhook]) -> QuerySet[Webhook]:
    return queryset.select_related("registered_model").prefetch_related(Prefetch("subscriptions"))


def webhook_list(
    *,
    actor: Any,
    flavor: str,
    events: list[str] | None = None,
    model_name: str | None = None,
) -> QuerySet[Webhook]:
    """The hooks of one API the actor may manage, newest first, optionally filtered by
    model and by events (a hook matches if it has any of them)."""
    queryset = Webhook.objects.filter(manageable_webhooks_q(actor), flavor=flavor)
    if model_name:
        queryset = queryset.filter(registered_model__name=model_name)
    if events:
        queryset = queryset.filter(subscriptions__event_type__in=events).distinct()
    return _with_output_relations(queryset.order_by("-created_at", "-id"))


def webhook_get(*, actor: Any, flavor: str, webhook_id: Any) -> Webhook:
    """A hook of this API by its id, if the actor may manage it."""
    code = _parse_code(webhook_id)
    webhook = (
        _with_output_relations(Webhook.objects.filter(code=code, flavor=flavor)).first()
        if code
        else None
    )
    if webhook is None:
        raise webhook_not_found(webhook_id)
    require_can_manage_webhook(actor, webhook.registered_model)
    return webhook


def webhook_get_any(*, actor: Any, webhook_id: Any) -> Webhook:
    """A hook of either API (the delivery log serves both)."""
    code = _parse_code(webhook_id)
    webhook = (
        Webhook.objects.select_related("registered_model").filter(code=code).first()
        if code
        else None
    )
    if webhook is None:
        raise webhook_not_found(webhook_id)
    require_can_manage_webhook(actor, webhook.registered_model)
    return webhook


def delivery_list(*, webhook: Webhook, with_attempts: bool = False) -> QuerySet[WebhookDelivery]:
    """The hook's deliveries, newest first; ``with_attempts`` prefetches each one's tries."""
    deliveries = (
        WebhookDelivery.objects.filter(webhook=webhook)
        .select_related("event", "webhook")
        .order_by("-created_at", "-id")
    )
    return deliveries.prefetch_related("attempts") if with_attempts else deliveries


def delivery_get(*, webhook: Webhook, delivery_id: Any) -> WebhookDelivery:
    code = _parse_code(delivery_id)
    delivery = (
        WebhookDelivery.objects.filter(webhook=webhook, code=code)
        .select_related("event", "webhook", "webhook__registered_model")
        .prefetch_related("attempts")
        .first()
        if code
        else None
    )
    if delivery is None:
        raise RegistryError.not_found(f"Delivery with ID {delivery_id} not found.")
    return delivery


@dataclass(frozen=True)
class WebhookHealth:
    """How a hook's sending goes, read from its tries (docs/webhooks.md, "Health"): the last
    try, the tries that failed since the last one that succeeded (test sends aside), the
    deliveries waiting and the earliest time one of them is due."""

    last_attempt: WebhookDeliveryAttempt | None
    failed_tries_in_a_row: int
    pending: int
    next_retry_at: datetime | None

    def label(self, webhook: Webhook) -> str:
        """One word for the lists: a hook whose tries fail is never "Active" alone."""
        if webhook.status == WebhookStatus.DISABLED:
            return "Disabled"
        if webhook.status == WebhookStatus.TEST_MODE:
            return "Test mode"
        if self.failed_tries_in_a_row:
            return "Failing"
        if self.last_attempt is None:
            return "Active, nothing sent yet"
        return "Healthy"


def webhook_health_many(*, webhooks: Iterable[Webhook]) -> dict[int, WebhookHealth]:
    """The health of each hook, by its id: two queries however many hooks and tries."""
    ids = [webhook.pk for webhook in webhooks]
    if not ids:
        return {}
    counted = Q(deliveries__is_test=False)
    last_success = Subquery(
        WebhookDeliveryAttempt.objects.filter(
            delivery__webhook=OuterRef("pk"),
            delivery__is_test=False,
            outcome=AttemptOutcome.SUCCESS,
        )
        .order_by("-started_at", "-id")
        .values("started_at")[:1]
    )
    rows = (
        Webhook.objects.filter(pk__in=ids)
        .annotate(last_success_at=last_success)
        .annotate(
            failed_in_a_row=Count(
                "deliveries__attempts",
                filter=counted
                & ~Q(deliveries__attempts__outcome=AttemptOutcome.SUCCESS)
                & (
                    Q(last_success_at__isnull=True)
                    | Q(deliveries__attempts__started_at__gt=F("last_success_at"))
                ),
            ),
            pending=Count(
                "deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING), distinct=True
            ),
            next_retry_at=Min(
                "deliveries__next_attempt_at",
                filter=Q(deliveries__status=DeliveryStatus.PENDING),
            ),
        )
        .values_list("pk", "failed_in_a_row", "pending", "next_retry_at")
    )
    last_attempts = {
        attempt.delivery.webhook_id: attempt
        for attempt in WebhookDeliveryAttempt.objects.filter(delivery__webhook_id__in=ids)
        .select_related("delivery")
        .order_by("delivery__webhook_id", "-started_at", "-id")
        .distinct("delivery__webhook_id")
    }
    return {
        pk: WebhookHealth(
            last_attempt=last_attempts.get(pk),
            failed_tries_in_a_row=failed,
            pending=pending,
            next_retry_at=next_retry_at,
        )
        for pk, failed, pending, next_retry_at in rows
    }
