"""Managing hooks: create, update, delete, send a test event, redeliver a delivery.

Each refuses unless the actor may manage the hook (accounts/permissions.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.permissions import require_can_manage_webhook
from kernel.errors import RegistryError
from registry.errors import registered_model_not_found
from registry.models import RegisteredModel
from webhooks import http, payloads
from webhooks.models import (
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookFlavor,
    WebhookStatus,
    WebhookSubscription,
)
from webhooks.services import outbox
from webhooks.services.delivery import record_try
from webhooks.services.matching import hooks_changing
from webhooks.services.sending import Try, build_and_send
from webhooks.services.validation import (
    DESCRIPTION_MAX_LENGTH,
    clean_authorization,
    clean_bool,
    clean_databricks_events,
    clean_mlflow_events,
    clean_name,
    clean_status,
    clean_template,
    clean_text,
    clean_url,
)

logger = logging.getLogger(__name__)


def _set_subscriptions(webhook: Webhook, events: Iterable[str]) -> None:
    webhook.subscriptions.all().delete()
    WebhookSubscription.objects.bulk_create(
        WebhookSubscription(webhook=webhook, event_type=event) for event in events
    )


def webhook_create(
    *,
    actor: User | None,
    flavor: str,
    events: Any,
    url: Any,
    secret: Any = None,
    authorization: Any = None,
    enable_ssl_verification: Any = None,
    status: Any = None,
    model_name: Any = None,
    description: Any = None,
    name: Any = None,
    payload_template: Any = None,
) -> Webhook:
    """A new hook. Databricks hooks may be limited to one model; MLflow hooks are registry-wide."""
    if flavor == WebhookFlavor.MLFLOW and model_name not in (None, ""):
        raise RegistryError.invalid(
            "MLflow-style hooks are for all models: leave Model empty, or make a "
            "Databricks-style hook to hear from one model."
        )
    registered_model = None
    if model_name not in (None, ""):
        try:
            registered_model = RegisteredModel.objects.get(name=model_name)
        except RegisteredModel.DoesNotExist:
            raise registered_model_not_found(model_name) from None
    require_can_manage_webhook(actor, registered_model)
    if flavor == WebhookFlavor.MLFLOW:
        cleaned_events = clean_mlflow_events(events)
        cleaned_name = clean_name(name)
    else:
        cleaned_events = clean_databricks_events(events, registry_wide=registered_model is None)
        cleaned_name = ""
    now = timezone.now()
    webhook = Webhook(
        flavor=flavor,
        name=cleaned_name,
        description=clean_text(description, "description", DESCRIPTION_MAX_LENGTH),
        url=clean_url(url),
        secret=clean_text(secret, "secret", 1000),
        authorization=clean_authorization(authorization),
        enable_ssl_verification=clean_bool(
            enable_ssl_verification, "enable_ssl_verification", True
        ),
        status=clean_status(status, flavor),
        registered_model=registered_model,
        payload_template=clean_template(payload_template),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        created_at=now,
        updated_at=now,
    )
    with hooks_changing([webhook.registered_model_id]):
        webhook.save()
        _set_subscriptions(webhook, cleaned_events)
    logger.info("Webhook %s created (%s, %s)", webhook.code, flavor, http.sanitize_url(webhook.url))
    return webhook


def webhook_update(
    *,
    actor: User | None,
    webhook: Webhook,
    events: Any = None,
    url: Any = None,
    secret: Any = None,
    authorization: Any = None,
    enable_ssl_verification: Any = None,
    status: Any = None,
    description: Any = None,
    name: Any = None,
    payload_template: Any = None,
) -> Webhook:
    """Change the fields given (``None``: leave as is; ``""`` removes a secret or an
    authorization).

    The secret and the authorization value belong to the receiver they were made for: a new
    URL drops both unless the same request sets them again. Otherwise anyone who may manage
    the hook (any co-manager of its model) could point it at their own receiver and be sent
    the owner's CI token and signatures made with the owner's secret. Turning certificate
    verification off drops them too (anyone between the registry and the receiver could then
    read the token). The answer shows that they are gone (``has_secret``,
    ``has_authorization``).
    """
    require_can_manage_webhook(actor, webhook.registered_model)
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = clean_url(url)
    if enable_ssl_verification is not None:
        changes["enable_ssl_verification"] = clean_bool(
            enable_ssl_verification, "enable_ssl_verification", True
        )
    retargeted = changes.get("url", webhook.url) != webhook.url or (
        webhook.enable_ssl_verification and changes.get("enable_ssl_verification") is False
    )
    if retargeted:
        changes["secret"] = ""
        changes["authorization"] = ""
    if secret is not None:
        changes["secret"] = clean_text(secret, "secret", 1000)
    if authorization is not None:
        changes["authorization"] = clean_authorization(authorization)
    if status is not None:
        changes["status"] = clean_status(status, webhook.flavor)
        if changes["status"] != WebhookStatus.DISABLED:
            # Turning a hook back on starts its failure count afresh.
            changes["consecutive_failures"] = 0
            changes["disabled_reason"] = ""
    if description is not None:
        changes["description"] = clean_text(description, "description", DESCRIPTION_MAX_LENGTH)
    if name is not None and webhook.flavor == WebhookFlavor.MLFLOW:
        changes["name"] = clean_name(name)
    if payload_template is not None:
        changes["payload_template"] = clean_template(payload_template)
    cleaned_events = None
    if events is not None:
        cleaned_events = (
            clean_mlflow_events(events)
            if webhook.flavor == WebhookFlavor.MLFLOW
            else clean_databricks_events(events, registry_wide=webhook.registered_model_id is None)
        )
    changes["updated_at"] = timezone.now()
    dropped = [
        field
        for field in ("secret", "authorization")
        if retargeted and getattr(webhook, field) and not changes.get(field)
    ]
    # A new status or new events can make the hook match or stop matching (docs/decisions/0021).
    matching_changes = (
        hooks_changing([webhook.registered_model_id])
        if "status" in changes or cleaned_events is not None
        else transaction.atomic()
    )
    with matching_changes:
        for field, value in changes.items():
            setattr(webhook, field, value)
        webhook.save(update_fields=list(changes))
        if cleaned_events is not None:
            _set_subscriptions(webhook, cleaned_events)
    if dropped:
        logger.info(
            "Webhook %s now sends to %s; its %s cleared with the URL or TLS change",
            webhook.code,
            http.sanitize_url(webhook.url),
            " and ".join(dropped) + (" were" if len(dropped) > 1 else " was"),
        )
    return webhook


def webhook_delete(*, actor: User | None, webhook: Webhook) -> None:
    require_can_manage_webhook(actor, webhook.registered_model)
    with hooks_changing([webhook.registered_model_id]):
        webhook.delete()


def webhook_test(
    *, actor: User | None, webhook: Webhook, event_type: str | None = None
) -> tuple[WebhookDelivery, http.HttpResult]:
    """Send an example event to the hook now (any status) and report what the receiver said.

    The try is in the delivery log like any other, marked as a test; it is not retried and
    does not count towards disabling the hook.
    """
    require_can_manage_webhook(actor, webhook.registered_model)
    if event_type is None:
        first = webhook.subscriptions.order_by("id").first()
        event_type = first.event_type if first else EventType.MODEL_VERSION_CREATED
    model_name = webhook.registered_model.name if webhook.registered_model else None
    data = payloads.example_data(event_type, model_name)
    now = timezone.now()
    token = uuid.uuid4()
    code = uuid.uuid4()
    actor_name = outbox.actor_name(actor)
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            event_type=event_type,
            model_name=data.get("model_name", ""),
            version=data.get("version", ""),
            data=data,
            actor_username=actor_name,
            is_test=True,
            created_at=now,
        )
        delivery = WebhookDelivery.objects.create(
            code=code,
            webhook=webhook,
            event=event,
            body="",
            status=DeliveryStatus.SENDING,
            is_test=True,
            attempt_count=1,
            claimed_at=now,
            claim_token=token,
            created_at=now,
            updated_at=now,
        )
    attempt, result = build_and_send(Try.of(delivery, token=token, at=now))
    record_try(attempt, result)
    delivery.refresh_from_db()
    return delivery, result


def webhook_delivery_redeliver(*, actor: User | None, delivery: WebhookDelivery) -> None:
    """Send a finished delivery again, with the same delivery id and body and a fresh budget
    of tries. Refused while it is still pending or being sent."""
    require_can_manage_webhook(actor, delivery.webhook.registered_model)
    now = timezone.now()
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, status__in=[DeliveryStatus.SUCCESS, DeliveryStatus.FAILED]
        ).update(
            status=DeliveryStatus.PENDING,
            attempts_before=F("attempts_before") + F("attempt_count"),
            attempt_count=0,
            is_test=False,
            next_attempt_at=now,
            claim_token=None,
            updated_at=now,
        )
        if not updated:
            raise RegistryError.invalid(
                f"Delivery {delivery.code} is still {delivery.status.lower()}; it can be "
                "redelivered once it has succeeded or failed."
            )
        delivery_id = delivery.pk
        transaction.on_commit(lambda: outbox.enqueue_deliveries([delivery_id]))
