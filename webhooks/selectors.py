"""Every read of the webhooks app for output: hooks a caller may manage, the delivery log."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import PermissionLevel, RegisteredModelGrant
from accounts.permissions import Level, default_level, is_admin, is_signed_in
from kernel.errors import RegistryError
from webhooks.models import Webhook, WebhookDelivery
from webhooks.services import require_can_manage_webhook


def _parse_code(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _manageable_q(actor: Any) -> Q:
    """Hooks the actor may manage: all for admins, else those of models they manage."""
    if is_admin(actor):
        return Q()
    if not is_signed_in(actor):
        return Q(pk__in=[])
    if default_level() >= Level.CAN_MANAGE:
        return Q(registered_model__isnull=False)
    managed = RegisteredModelGrant.objects.filter(level=PermissionLevel.CAN_MANAGE).filter(
        Q(user=actor) | Q(group__in=actor.groups.all())
    )
    return Q(registered_model__in=managed.values("registered_model"))


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
    queryset = Webhook.objects.filter(_manageable_q(actor), flavor=flavor)
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
        raise RegistryError.not_found(f"Webhook with ID {webhook_id} not found.")
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
        raise RegistryError.not_found(f"Webhook with ID {webhook_id} not found.")
    require_can_manage_webhook(actor, webhook.registered_model)
    return webhook


def delivery_list(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    return (
        WebhookDelivery.objects.filter(webhook=webhook)
        .select_related("event", "webhook")
        .order_by("-created_at", "-id")
    )


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
