"""Every read of the webhooks app for output: hooks a caller may manage, the delivery log."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from accounts.permissions import manageable_webhooks_q, require_can_manage_webhook
from kernel.errors import RegistryError
from webhooks.models import Webhook, WebhookDelivery


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
