"""Webhooks: the endpoints, and an outbox of events, deliveries and attempts (docs/architecture.md,
"Webhooks").

A service that changes the registry writes one :class:`WebhookEvent` per event type and one
:class:`WebhookDelivery` (``PENDING``) per subscribed webhook in the same transaction as the
change; a Celery task sends each delivery and writes one :class:`WebhookDeliveryAttempt` per
try. The rows are the source of truth: a lost broker message or a dead worker is repaired by
the periodic sweep, which re-queues what is due.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from webhooks.crypto import EncryptedTextField


class WebhookFlavor(models.TextChoices):
    """The API a hook was made through; it fixes the vocabulary, payload shape and signature."""

    DATABRICKS = "DATABRICKS", "Databricks registry webhook"
    MLFLOW = "MLFLOW", "MLflow 3.x webhook"


class WebhookStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    TEST_MODE = "TEST_MODE", "Test mode (fires only from test)"
    DISABLED = "DISABLED", "Disabled"


class EventType(models.TextChoices):
    """Every event the registry emits.

    The first twelve are Databricks' ``RegistryWebhookEvent`` values; the rest are what MLflow
    names beyond them (tag deleted, aliases) and the registry's own (decisions on requests,
    registration finished, a hook disabled after repeated failures, deletions).
    """

    MODEL_VERSION_CREATED = "MODEL_VERSION_CREATED"
    MODEL_VERSION_TRANSITIONED_STAGE = "MODEL_VERSION_TRANSITIONED_STAGE"
    TRANSITION_REQUEST_CREATED = "TRANSITION_REQUEST_CREATED"
    COMMENT_CREATED = "COMMENT_CREATED"
    REGISTERED_MODEL_CREATED = "REGISTERED_MODEL_CREATED"
    MODEL_VERSION_TAG_SET = "MODEL_VERSION_TAG_SET"
    MODEL_VERSION_TRANSITIONED_TO_STAGING = "MODEL_VERSION_TRANSITIONED_TO_STAGING"
    MODEL_VERSION_TRANSITIONED_TO_PRODUCTION = "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"
    MODEL_VERSION_TRANSITIONED_TO_ARCHIVED = "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"
    TRANSITION_REQUEST_TO_STAGING_CREATED = "TRANSITION_REQUEST_TO_STAGING_CREATED"
    TRANSITION_REQUEST_TO_PRODUCTION_CREATED = "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"
    TRANSITION_REQUEST_TO_ARCHIVED_CREATED = "TRANSITION_REQUEST_TO_ARCHIVED_CREATED"
    # Beyond Databricks' twelve.
    MODEL_VERSION_TAG_DELETED = "MODEL_VERSION_TAG_DELETED"
    MODEL_VERSION_ALIAS_CREATED = "MODEL_VERSION_ALIAS_CREATED"
    MODEL_VERSION_ALIAS_DELETED = "MODEL_VERSION_ALIAS_DELETED"
    TRANSITION_REQUEST_APPROVED = "TRANSITION_REQUEST_APPROVED"
    TRANSITION_REQUEST_REJECTED = "TRANSITION_REQUEST_REJECTED"
    MODEL_VERSION_READY = "MODEL_VERSION_READY"
    MODEL_VERSION_REGISTRATION_FAILED = "MODEL_VERSION_REGISTRATION_FAILED"
    WEBHOOK_DISABLED = "WEBHOOK_DISABLED"
    MODEL_VERSION_DELETED = "MODEL_VERSION_DELETED"
    # Registry-wide hooks only: a model's own hooks are deleted with it.
    REGISTERED_MODEL_DELETED = "REGISTERED_MODEL_DELETED"
    # Governed aliases: an alias now names another version (from_version, to_version), and the
    # steps of an alias request.
    MODEL_VERSION_ALIAS_MOVED = "MODEL_VERSION_ALIAS_MOVED"
    ALIAS_REQUEST_CREATED = "ALIAS_REQUEST_CREATED"
    ALIAS_REQUEST_APPROVED = "ALIAS_REQUEST_APPROVED"
    ALIAS_REQUEST_REJECTED = "ALIAS_REQUEST_REJECTED"
    # Registry-wide hooks only: the heads of the trail's hash chains, sent by the periodic
    # export (docs/decisions/0017-tamper-evident-trail.md) to keep a copy outside the registry.
    TRAIL_HEAD_EXPORTED = "TRAIL_HEAD_EXPORTED"


class Webhook(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    flavor = models.CharField(max_length=16, choices=WebhookFlavor.choices)
    name = models.CharField(max_length=63, blank=True, default="")
    description = models.TextField(blank=True, default="")
    url = models.TextField()
    # Write-only: never rendered by an API, never logged; encrypted at rest (webhooks/crypto.py).
    secret = EncryptedTextField(blank=True, default="")
    authorization = EncryptedTextField(blank=True, default="")
    enable_ssl_verification = models.BooleanField(default=True)
    status = models.CharField(
        max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.ACTIVE
    )
    # None: registry-wide.
    registered_model = models.ForeignKey(
        "registry.RegisteredModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhooks",
    )
    payload_template = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=WebhookStatus.values), name="webhook_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(flavor__in=WebhookFlavor.values), name="webhook_flavor_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flavor} webhook {self.code} -> {self.url}"


class WebhookSubscription(models.Model):
    """One event type a webhook listens to; a table (not a JSON list) so matching is a join."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="subscriptions")
    event_type = models.CharField(max_length=64, choices=EventType.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "event_type"], name="webhook_subscription_unique"
            ),
        ]
        indexes = [models.Index(fields=["event_type"], name="webhook_sub_event")]

    def __str__(self) -> str:
        return self.event_type


class WebhookEvent(models.Model):
    """What happened, serialized once. Outlives the registered model it is about."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    model_name = models.CharField(max_length=256, blank=True, default="")
    version = models.CharField(max_length=32, blank=True, default="")
    data = models.JSONField(default=dict)
    actor_username = models.CharField(max_length=150, blank=True, default="")
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.model_name} {self.version}".strip()


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENDING = "SENDING", "Sending"
    SUCCESS = "SUCCESS", "Delivered"
    FAILED = "FAILED", "Failed"


class WebhookDelivery(models.Model):
    """One event to one webhook. ``code`` is the delivery id sent with every try."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    # The exact bytes sent (as UTF-8 text). Rendered by the worker on the first try and kept, so
    # every retry sends the same body; empty until then, and when it could not be built.
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    is_test = models.BooleanField(default=False)
    # Tries in the current round; a redelivery starts a new round (attempts_before keeps the
    # earlier tries so attempt numbers go on counting).
    attempt_count = models.PositiveIntegerField(default=0)
    attempts_before = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Set by the claim; a SENDING row whose claim is older than the lease is re-queued.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    last_response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values),
                name="webhook_delivery_status_valid",
            ),
        ]
        indexes = [
            # The sweep: due PENDING rows and expired SENDING claims.
            models.Index(fields=["status", "next_attempt_at"], name="wh_delivery_due"),
            # The delivery log of one hook, newest first.
            models.Index(fields=["webhook", "-created_at", "-id"], name="wh_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.code} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SUCCESS = "SUCCESS", "Delivered"
    RETRY = "RETRY", "Failed, will retry"
    FAILED = "FAILED", "Failed, final"


class WebhookDeliveryAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["delivery_id", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
