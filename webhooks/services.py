"""Every write of the webhooks app: managing hooks, emitting events, delivering them.

Delivery is a transactional outbox (docs/architecture.md, "Webhooks"):

1. :func:`webhook_event_emit`, called by a registry service inside its transaction, writes a
   :class:`WebhookEvent` per event type and a ``PENDING`` :class:`WebhookDelivery` per matching
   ``ACTIVE`` hook, and queues one task per delivery when the transaction commits. It renders
   nothing: a body (which a payload template can make large) is built by the worker.
2. :func:`webhook_delivery_send` (the task) claims the delivery with a conditional UPDATE,
   renders its body on the first try (then keeps it, so every retry sends the same bytes),
   sends it outside any transaction, writes a :class:`WebhookDeliveryAttempt`, and either marks
   it delivered, schedules a retry (capped exponential backoff with jitter) or marks it
   ``FAILED``. A delivery that cannot be built or sent because of its hook's settings (a body
   over ``WEBHOOKS_MAX_BODY_BYTES``, a template or header that cannot be used) fails at once,
   with the reason. A hook whose deliveries fail ``DISABLE_AFTER_FAILURES`` times in a row is
   disabled, and a ``WEBHOOK_DISABLED`` event says so.
3. :func:`webhook_deliveries_sweep` (Celery beat) re-queues what is due but was never picked
   up (broker down at commit, lost message) and takes back claims whose worker died.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from accounts.permissions import Level, is_admin, require_level
from kernel.backoff import backoff
from kernel.errors import ErrorCode, RegistryError
from kernel.metrics import WEBHOOK_DELIVERIES
from kernel.queueing import enqueue
from registry.models import ModelVersion, RegisteredModel
from webhooks import crypto, http, payloads, signing
from webhooks.conf import webhook_settings
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEvent,
    WebhookFlavor,
    WebhookStatus,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 1000
_MLFLOW_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)
# A task may run a moment before the row's next_attempt_at by the database's clock.
_CLOCK_SLACK = timedelta(seconds=1)


# --- Identity and permissions -----------------------------------------------------------------


def webhook_public_id(webhook: Webhook) -> str:
    """Databricks ids are 32 hex digits; MLflow's are UUID4 strings. Both parse as the code."""
    return _public_id(webhook.flavor, webhook.code)


def _public_id(flavor: str, code: uuid.UUID) -> str:
    return code.hex if flavor == WebhookFlavor.DATABRICKS else str(code)


def require_can_manage_webhook(actor: Any, registered_model: RegisteredModel | None) -> None:
    """Model-specific hooks need CAN_MANAGE on the model; registry-wide hooks need an admin."""
    if registered_model is not None:
        require_level(actor, registered_model, Level.CAN_MANAGE, action="manage webhooks of")
        return
    if not is_admin(actor):
        code = (
            ErrorCode.PERMISSION_DENIED
            if getattr(actor, "is_authenticated", False)
            else ErrorCode.UNAUTHENTICATED
        )
        raise RegistryError(code, "Registry-wide webhooks can be managed only by registry admins.")


# --- Validation -------------------------------------------------------------------------------


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError.invalid("Missing value for required parameter 'url'.")
    value = value.strip()
    if len(value) > URL_MAX_LENGTH:
        raise RegistryError.invalid(f"Webhook URL is longer than {URL_MAX_LENGTH} characters.")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        # Sent as they are, they would be escaped in the path but break the host name.
        raise RegistryError.invalid(
            "Webhook URL must not contain spaces or control characters: percent-encode them."
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise RegistryError.invalid(f"Invalid webhook URL '{http.sanitize_url(value)}'.") from None
    allowed = webhook_settings().allowed_schemes
    if parts.scheme.lower() not in allowed:
        raise RegistryError.invalid(
            f"Invalid webhook URL scheme '{parts.scheme}': allowed are {', '.join(allowed)}."
        )
    if not parts.hostname:
        raise RegistryError.invalid("Webhook URL must have a host name.")
    return value


def _text(value: Any, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RegistryError.invalid(f"Invalid value for parameter '{field}': expected a string.")
    if len(value) > max_length:
        raise RegistryError.invalid(f"'{field}' is longer than {max_length} characters.")
    return value


def _authorization(value: Any) -> str:
    """The ``Authorization`` header's value: refused unless it can be sent as one, so a line
    break can neither add headers nor make every delivery fail later."""
    value = _text(value, "authorization", 4000)
    if not http.is_header_value(value):
        raise RegistryError.invalid(
            "Invalid value for parameter 'authorization': it is sent as an HTTP header, so it "
            "may not hold line breaks or other control characters, nor characters outside "
            "Latin-1."
        )
    return value


def _template(value: Any) -> str:
    return payloads.validate_template(value, max_body_bytes=webhook_settings().max_body_bytes)


def _status(value: Any, flavor: str) -> str:
    allowed = (
        WebhookStatus.values
        if flavor == WebhookFlavor.DATABRICKS
        else [WebhookStatus.ACTIVE, WebhookStatus.DISABLED]
    )
    if value in (None, ""):
        return WebhookStatus.ACTIVE
    if value not in allowed:
        raise RegistryError.invalid(
            f"Invalid webhook status '{value}': use one of {', '.join(allowed)}."
        )
    return str(value)


def _databricks_events(value: Any, *, registry_wide: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RegistryError.invalid("Missing value for required parameter 'events'.")
    events: list[str] = []
    for item in value:
        if item not in EventType.values:
            raise RegistryError.invalid(
                f"Invalid webhook event '{item}': use one of {', '.join(EventType.values)}."
            )
        if item in payloads.REGISTRY_WIDE_ONLY and not registry_wide:
            raise RegistryError.invalid(
                f"{item} can be used only on registry-wide webhooks (without model_name)."
            )
        if item not in events:
            events.append(item)
    return events


def _mlflow_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RegistryError.invalid("Webhook events cannot be empty.")
    events: list[str] = []
    for item in value:
        pair = mlflow_event_pair(item)
        if pair in payloads.MLFLOW_UNSUPPORTED_PAIRS:
            raise RegistryError.invalid(
                f"Webhook event {pair[0].lower()}.{pair[1].lower()} is not supported by this "
                "registry (it has no prompts or AI gateway)."
            )
        event = payloads.MLFLOW_EVENTS.get(pair)
        if event is None:
            raise RegistryError.invalid(
                f"Invalid webhook event: entity {pair[0]} with action {pair[1]}."
            )
        if event not in events:
            events.append(event)
    return events


def mlflow_event_pair(item: Any) -> tuple[str, str]:
    """``{"entity": "MODEL_VERSION", "action": "CREATED"}`` (names, any case) as a pair."""
    if not isinstance(item, dict):
        raise RegistryError.invalid("Each webhook event must be an object with entity and action.")
    entity, action = item.get("entity"), item.get("action")
    if not isinstance(entity, str) or not isinstance(action, str) or not entity or not action:
        raise RegistryError.invalid("Each webhook event needs an entity and an action.")
    return entity.upper(), action.upper()


def _name(value: Any) -> str:
    if value is None or not isinstance(value, str) or not _MLFLOW_NAME.match(value):
        raise RegistryError.invalid(
            f"Invalid webhook name '{value}': 1 to 63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
        )
    return value


def _bool(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RegistryError.invalid(f"Invalid value for parameter '{field}': expected a boolean.")
    return value


def _set_subscriptions(webhook: Webhook, events: Iterable[str]) -> None:
    webhook.subscriptions.all().delete()
    WebhookSubscription.objects.bulk_create(
        WebhookSubscription(webhook=webhook, event_type=event) for event in events
    )


# --- Managing hooks ---------------------------------------------------------------------------


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
    registered_model = None
    if model_name not in (None, ""):
        try:
            registered_model = RegisteredModel.objects.get(name=model_name)
        except RegisteredModel.DoesNotExist:
            raise RegistryError.not_found(
                f"Registered Model with name={model_name} not found"
            ) from None
    require_can_manage_webhook(actor, registered_model)
    if flavor == WebhookFlavor.MLFLOW:
        cleaned_events = _mlflow_events(events)
        cleaned_name = _name(name)
    else:
        cleaned_events = _databricks_events(events, registry_wide=registered_model is None)
        cleaned_name = ""
    now = timezone.now()
    webhook = Webhook(
        flavor=flavor,
        name=cleaned_name,
        description=_text(description, "description", DESCRIPTION_MAX_LENGTH),
        url=_url(url),
        secret=_text(secret, "secret", 1000),
        authorization=_authorization(authorization),
        enable_ssl_verification=_bool(enable_ssl_verification, "enable_ssl_verification", True),
        status=_status(status, flavor),
        registered_model=registered_model,
        payload_template=_template(payload_template),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        created_at=now,
        updated_at=now,
    )
    with transaction.atomic():
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
        changes["url"] = _url(url)
    if enable_ssl_verification is not None:
        changes["enable_ssl_verification"] = _bool(
            enable_ssl_verification, "enable_ssl_verification", True
        )
    retargeted = changes.get("url", webhook.url) != webhook.url or (
        webhook.enable_ssl_verification and changes.get("enable_ssl_verification") is False
    )
    if retargeted:
        changes["secret"] = ""
        changes["authorization"] = ""
    if secret is not None:
        changes["secret"] = _text(secret, "secret", 1000)
    if authorization is not None:
        changes["authorization"] = _authorization(authorization)
    if status is not None:
        changes["status"] = _status(status, webhook.flavor)
        if changes["status"] != WebhookStatus.DISABLED:
            # Turning a hook back on starts its failure count afresh.
            changes["consecutive_failures"] = 0
            changes["disabled_reason"] = ""
    if description is not None:
        changes["description"] = _text(description, "description", DESCRIPTION_MAX_LENGTH)
    if name is not None and webhook.flavor == WebhookFlavor.MLFLOW:
        changes["name"] = _name(name)
    if payload_template is not None:
        changes["payload_template"] = _template(payload_template)
    cleaned_events = None
    if events is not None:
        cleaned_events = (
            _mlflow_events(events)
            if webhook.flavor == WebhookFlavor.MLFLOW
            else _databricks_events(events, registry_wide=webhook.registered_model_id is None)
        )
    changes["updated_at"] = timezone.now()
    dropped = [
        field
        for field in ("secret", "authorization")
        if retargeted and getattr(webhook, field) and not changes.get(field)
    ]
    with transaction.atomic():
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
    webhook.delete()


# --- Emitting events --------------------------------------------------------------------------


def _actor_name(actor: Any) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return ""
    return str(actor.get_username())


@dataclass(frozen=True)
class _Source:
    """What a delivery's body is rendered from: its stored event and its hook's settings."""

    flavor: str
    webhook_code: uuid.UUID
    template: str
    event_type: str
    data: dict[str, Any]
    at: datetime
    actor: str

    def render(self, delivery_code: uuid.UUID) -> str:
        """The body, or :class:`payloads.RenderError` if it cannot be built or is larger than
        ``WEBHOOKS_MAX_BODY_BYTES``."""
        max_bytes = webhook_settings().max_body_bytes
        webhook_id = _public_id(self.flavor, self.webhook_code)
        payload = payloads.default_payload(
            flavor=self.flavor,
            event_type=self.event_type,
            data=self.data,
            webhook_id=webhook_id,
            at=self.at,
            actor=self.actor,
        )
        if not self.template:
            return payloads.check_size(json.dumps(payload), max_bytes)
        fields = payloads.template_fields(
            event_type=self.event_type,
            data=self.data,
            webhook_id=webhook_id,
            delivery_id=str(delivery_code),
            at=self.at,
            actor=self.actor,
            payload=payload,
        )
        return payloads.render_template(self.template, fields, max_bytes=max_bytes)


def webhook_event_emit(
    *,
    event: str,
    registered_model: RegisteredModel | None,
    model_version: ModelVersion | None = None,
    payload_data: dict[str, Any] | None = None,
    actor: Any,
) -> list[int]:
    """Record an event and a delivery per subscribed ACTIVE hook; send them after commit.

    Call it inside the transaction of the change it reports, so the event exists exactly when
    the change does. The deliveries hold no body yet: the worker renders it from the event, so
    a hook's template, however large its result, never slows down or fails the change.
    ``payload_data`` holds the event's own fields (``to_stage``, ``key``, ...); the model name
    and version come from the objects. A stage event also fires its per-stage variant. Returns
    the ids of the deliveries written.
    """
    if not webhook_settings().enabled:
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
    actor_name = _actor_name(actor)
    with transaction.atomic(savepoint=False):
        events = {
            event_type: WebhookEvent(
                event_type=event_type,
                model_name=data.get("model_name", ""),
                version=data.get("version", ""),
                data=data,
                actor_username=actor_name,
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
    from webhooks.tasks import webhook_delivery_send_task

    return enqueue(
        webhook_delivery_send_task, [(delivery_id,) for delivery_id in ids], countdown=countdown
    )


# --- Sending ----------------------------------------------------------------------------------
#
# The hot path of the worker. On PostgreSQL a successful try costs two statements: the claim
# (a conditional UPDATE ... RETURNING joined to the hook and the event, so nothing is read
# again) and the record (one statement whose CTEs insert the attempt row and move the
# delivery on, still conditional on the claim). Both commit without waiting for the WAL
# flush; see :func:`_bookkeeping` for why that is safe. Other databases take the same steps
# through the ORM.


@dataclass(frozen=True)
class _Try:
    """One claimed try of one delivery: all that sending and recording it need."""

    delivery_id: int
    code: uuid.UUID
    body: str
    event_type: str
    is_test: bool
    attempt_count: int  # including this try
    attempts_before: int
    token: uuid.UUID
    started_at: datetime
    webhook_id: int
    flavor: str
    url: str
    secret: str
    authorization: str
    verify_tls: bool
    webhook_status: str
    consecutive_failures: int  # as read by the claim
    # Set while the body is still to be rendered (the first try of a delivery).
    source: _Source | None = None
    # The body was rendered by this try: the record keeps it for the next ones.
    rendered: bool = False

    @classmethod
    def of(cls, delivery: WebhookDelivery, *, token: uuid.UUID, at: datetime) -> _Try:
        webhook = delivery.webhook
        event = delivery.event
        source = None
        if not delivery.body:
            source = _Source(
                flavor=webhook.flavor,
                webhook_code=webhook.code,
                template=webhook.payload_template,
                event_type=event.event_type,
                data=event.data,
                at=event.created_at,
                actor=event.actor_username,
            )
        return cls(
            delivery_id=delivery.pk,
            code=delivery.code,
            body=delivery.body,
            event_type=delivery.event.event_type,
            is_test=delivery.is_test,
            attempt_count=delivery.attempt_count,
            attempts_before=delivery.attempts_before,
            token=token,
            started_at=at,
            webhook_id=webhook.pk,
            flavor=webhook.flavor,
            url=webhook.url,
            secret=webhook.secret,
            authorization=webhook.authorization,
            verify_tls=webhook.enable_ssl_verification,
            webhook_status=webhook.status,
            consecutive_failures=webhook.consecutive_failures,
            source=source,
        )


def _headers(attempt: _Try, body: bytes) -> dict[str, str]:
    delivery_id = str(attempt.code)
    headers = {
        "Content-Type": "application/json",
        "X-Registry-Delivery-Id": delivery_id,
        "X-Registry-Event": attempt.event_type,
    }
    if attempt.flavor == WebhookFlavor.MLFLOW:
        timestamp = str(int(time.time()))
        headers["X-MLflow-Delivery-Id"] = delivery_id
        headers["X-MLflow-Timestamp"] = timestamp
        if attempt.secret:
            headers["X-MLflow-Signature"] = signing.mlflow_signature(
                attempt.secret, delivery_id, timestamp, body
            )
    else:
        if attempt.secret:
            headers["X-Databricks-Signature"] = signing.databricks_signature(attempt.secret, body)
        if attempt.authorization:
            headers["Authorization"] = attempt.authorization
    return headers


def _send(attempt: _Try) -> http.HttpResult:
    body = attempt.body.encode("utf-8")
    return http.post(
        attempt.url,
        body=body,
        headers=_headers(attempt, body),
        verify_tls=attempt.verify_tls,
    )


def _not_sent(reason: str) -> http.HttpResult:
    """A final failure without a request: retrying cannot help until the hook is changed."""
    return http.HttpResult(None, "", f"Not sent: {reason}", 0, False)


def _build_and_send(attempt: _Try) -> tuple[_Try, http.HttpResult]:
    """Render the body if this is the first try, then send it.

    Never raises: a delivery that cannot be built or sent because of its hook's settings gets
    a final failure with the reason. An exception here would leave the delivery ``SENDING``
    for the sweep to take back and try again (the same failure, each time), and a test call
    would answer 500.
    """
    try:
        if attempt.source is not None:
            body = attempt.source.render(attempt.code)
            attempt = replace(attempt, body=body, source=None, rendered=True)
        else:  # rendered by an earlier try, perhaps under a larger limit
            payloads.check_size(attempt.body, webhook_settings().max_body_bytes)
        return attempt, _send(attempt)
    except payloads.RenderError as exc:
        return attempt, _not_sent(f"{exc}.")
    except Exception:
        logger.exception("Webhook delivery %s could not be built or sent", attempt.code)
        return attempt, _not_sent("the request could not be built (see the worker's log).")


def backoff_seconds(attempt: int) -> float:
    """Wait before try ``attempt + 1``: base * 2**(attempt-1), capped, with equal jitter."""
    config = webhook_settings()
    return backoff(
        max(attempt - 1, 0), base=config.backoff_base, cap=config.backoff_max, jitter=True
    )


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def _bookkeeping() -> Iterator[None]:
    """A transaction for the worker's own records (claims, attempts, states).

    On PostgreSQL it commits without waiting for the WAL flush (``synchronous_commit`` off
    for this transaction only). If the database crashed right after, the last such commits
    may be lost, never half of one: a lost claim leaves the delivery ``PENDING`` and a lost
    record leaves it ``SENDING`` until the sweep takes the claim back, so either way the
    delivery is sent again, which at-least-once delivery allows (receivers de-duplicate on
    the delivery id). The outbox rows themselves are written by the registry's own, fully
    durable, transaction. Inside a caller's transaction nothing is changed, so that
    transaction keeps its own durability.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and _postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# The same relaxation for a single statement in autocommit mode (its own transaction): the
# CTE is joined to the result, so PostgreSQL evaluates it, and is_local=true ends it with the
# statement. Used only outside a caller's transaction (see _bookkeeping).
_ASYNC_COMMIT_CTE = "async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS v)"

_CLAIM_SQL = """
WITH {async_commit}
claimed AS (
    UPDATE webhooks_webhookdelivery
       SET status = 'SENDING', claimed_at = %(now)s, claim_token = %(token)s,
           attempt_count = attempt_count + 1, updated_at = %(now)s
     WHERE id = %(id)s AND status = 'PENDING' AND next_attempt_at <= %(due)s
 RETURNING id, code, body, is_test, attempt_count, attempts_before, webhook_id, event_id
)
SELECT c.code, c.body, e.event_type, c.is_test, c.attempt_count, c.attempts_before,
       w.id, w.flavor, w.url, w.secret, w.authorization, w.enable_ssl_verification, w.status,
       w.consecutive_failures,
       -- what the body is rendered from, read only while there is none yet
       CASE WHEN c.body = '' THEN w.code END, CASE WHEN c.body = '' THEN w.payload_template END,
       CASE WHEN c.body = '' THEN e.data::text END, e.created_at, e.actor_username
  FROM claimed c
  JOIN webhooks_webhook w ON w.id = c.webhook_id
  JOIN webhooks_webhookevent e ON e.id = c.event_id{join_async_commit}
"""

_RECORD_SQL = """
WITH {async_commit}
attempt AS (
    INSERT INTO webhooks_webhookdeliveryattempt
           (delivery_id, number, outcome, response_status, error, response_excerpt,
            duration_ms, started_at)
    VALUES (%(id)s, %(number)s, %(outcome)s, %(response_status)s, %(error)s, %(excerpt)s,
            %(duration_ms)s, %(started_at)s)
),
owned AS (
    UPDATE webhooks_webhookdelivery
       SET status = %(status)s, last_response_status = %(response_status)s,
           last_error = %(error)s, updated_at = %(now)s, claim_token = NULL,
           body = COALESCE(%(body)s::text, body),
           delivered_at = COALESCE(%(delivered_at)s::timestamptz, delivered_at),
           next_attempt_at = COALESCE(%(next_attempt_at)s::timestamptz, next_attempt_at)
     WHERE id = %(id)s AND status = 'SENDING' AND claim_token = %(token)s
 RETURNING id
),
hook AS (
    UPDATE webhooks_webhook SET consecutive_failures = 0
     WHERE id = %(webhook_id)s AND %(reset_failures)s AND consecutive_failures <> 0
       AND EXISTS (SELECT 1 FROM owned)
)
SELECT (SELECT count(*) FROM owned){select_async_commit}
"""


class _Statement(NamedTuple):
    durable: str  # inside a caller's transaction
    relaxed: str  # on its own: commits without waiting for the WAL flush

    @classmethod
    def of(cls, template: str, *, join: str = "", select: str = "") -> _Statement:
        return cls(
            durable=template.format(async_commit="", join_async_commit="", select_async_commit=""),
            relaxed=template.format(
                async_commit=_ASYNC_COMMIT_CTE + ",",
                join_async_commit=join,
                select_async_commit=select,
            ),
        )

    def now(self) -> str:
        return self.durable if connection.in_atomic_block else self.relaxed


_CLAIM = _Statement.of(_CLAIM_SQL, join=" CROSS JOIN async_commit")
_RECORD = _Statement.of(_RECORD_SQL, select=", (SELECT v FROM async_commit)")


def _claim(delivery_id: int, *, now: datetime, token: uuid.UUID) -> _Try | None:
    """Take the delivery if it is PENDING and due (a conditional UPDATE, never
    check-then-act); ``None`` if it is not, or if another worker took it first."""
    if _postgresql():
        params = {"id": delivery_id, "now": now, "due": now + _CLOCK_SLACK, "token": token}
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM.now(), params)
            row = cursor.fetchone()
        if row is None:
            return None
        code, body, event_type, is_test, attempt_count, attempts_before = row[:6]
        code = code if isinstance(code, uuid.UUID) else uuid.UUID(code)
        source = None
        if not body:
            webhook_code, template, data, created_at, actor = row[14:19]
            source = _Source(
                flavor=row[7],
                webhook_code=(
                    webhook_code if isinstance(webhook_code, uuid.UUID) else uuid.UUID(webhook_code)
                ),
                template=template,
                event_type=event_type,
                data=json.loads(data),
                at=created_at,
                actor=actor,
            )
        return _Try(
            delivery_id=delivery_id,
            code=code,
            body=body,
            event_type=event_type,
            is_test=is_test,
            attempt_count=attempt_count,
            attempts_before=attempts_before,
            token=token,
            started_at=now,
            webhook_id=row[6],
            flavor=row[7],
            url=row[8],
            secret=crypto.decrypt(row[9]),
            authorization=crypto.decrypt(row[10]),
            verify_tls=row[11],
            webhook_status=row[12],
            consecutive_failures=row[13],
            source=source,
        )
    with _bookkeeping():
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now + _CLOCK_SLACK,
        ).update(
            status=DeliveryStatus.SENDING,
            claimed_at=now,
            claim_token=token,
            attempt_count=F("attempt_count") + 1,
            updated_at=now,
        )
    if claimed != 1:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook", "event").get(pk=delivery_id)
    return _Try.of(delivery, token=token, at=now)


def webhook_delivery_send(*, delivery_id: int) -> str:
    """One try of one delivery. Idempotent: a delivery that is not due and PENDING is left
    alone, so duplicate task messages (sweep, acks_late redelivery) are harmless."""
    attempt = _claim(delivery_id, now=timezone.now(), token=uuid.uuid4())
    if attempt is None:
        return "skipped"
    if attempt.webhook_status == WebhookStatus.DISABLED:
        result = _not_sent("the webhook is disabled.")
    else:
        attempt, result = _build_and_send(attempt)
    outcome = _record(attempt, result)
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    return outcome


def _outcome(attempt: _Try, result: http.HttpResult) -> str:
    if result.ok:
        return AttemptOutcome.SUCCESS
    if (
        result.retryable
        and not attempt.is_test
        and attempt.attempt_count < webhook_settings().max_attempts
    ):
        return AttemptOutcome.RETRY
    return AttemptOutcome.FAILED


def _record(attempt: _Try, result: http.HttpResult) -> str:
    """Write the attempt and the delivery's new state; count failures on the hook.

    Only the holder of the claim may move the delivery on: if the sweep took the claim back
    meanwhile (a try that outlived its lease), the other holder decides. The attempt row is
    written either way, since the try happened.
    """
    now = timezone.now()
    outcome = _outcome(attempt, result)
    retry_in = backoff_seconds(attempt.attempt_count) if outcome == AttemptOutcome.RETRY else 0.0
    if outcome != AttemptOutcome.FAILED and _postgresql():
        owned = _record_in_one_statement(attempt, result, outcome, now=now, retry_in=retry_in)
    else:
        owned = _record_in_a_transaction(attempt, result, outcome, now=now, retry_in=retry_in)
    if owned and outcome == AttemptOutcome.RETRY:
        delivery_id = attempt.delivery_id
        # Immediately when outside a transaction (the statement has committed).
        transaction.on_commit(lambda: enqueue_deliveries([delivery_id], countdown=retry_in))
    if outcome != AttemptOutcome.SUCCESS:
        logger.info(
            "Webhook delivery %s to %s: %s (%s)",
            attempt.code,
            http.sanitize_url(attempt.url),
            outcome,
            result.error,
        )
    return str(outcome)


def _record_in_one_statement(
    attempt: _Try, result: http.HttpResult, outcome: str, *, now: datetime, retry_in: float
) -> bool:
    """Success or retry on PostgreSQL: attempt row, delivery state and (after a success) the
    hook's failure count, in one statement and so one transaction."""
    success = outcome == AttemptOutcome.SUCCESS
    params = {
        "id": attempt.delivery_id,
        "number": attempt.attempts_before + attempt.attempt_count,
        "outcome": outcome,
        "response_status": result.status,
        "error": result.error,
        "excerpt": result.body_excerpt[:1000],
        "duration_ms": result.duration_ms,
        "started_at": attempt.started_at,
        "status": DeliveryStatus.SUCCESS if success else DeliveryStatus.PENDING,
        "now": now,
        "delivered_at": now if success else None,
        "next_attempt_at": None if success else now + timedelta(seconds=retry_in),
        "token": attempt.token,
        "webhook_id": attempt.webhook_id,
        "body": attempt.body if attempt.rendered else None,
        # A success ends a run of failures; the count as read by the claim saves a write.
        "reset_failures": success and not attempt.is_test and attempt.consecutive_failures > 0,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RECORD.now(), params)
        row = cursor.fetchone()
    return bool(row and row[0])


def _record_in_a_transaction(
    attempt: _Try, result: http.HttpResult, outcome: str, *, now: datetime, retry_in: float
) -> bool:
    fields: dict[str, Any] = {
        "last_response_status": result.status,
        "last_error": result.error,
        "updated_at": now,
        "claim_token": None,
    }
    if attempt.rendered:
        fields["body"] = attempt.body
    if outcome == AttemptOutcome.SUCCESS:
        fields.update(status=DeliveryStatus.SUCCESS, delivered_at=now)
    elif outcome == AttemptOutcome.RETRY:
        fields.update(
            status=DeliveryStatus.PENDING, next_attempt_at=now + timedelta(seconds=retry_in)
        )
    else:
        fields["status"] = DeliveryStatus.FAILED
    with _bookkeeping():
        WebhookDeliveryAttempt.objects.create(
            delivery_id=attempt.delivery_id,
            number=attempt.attempts_before + attempt.attempt_count,
            outcome=outcome,
            response_status=result.status,
            error=result.error,
            response_excerpt=result.body_excerpt[:1000],
            duration_ms=result.duration_ms,
            started_at=attempt.started_at,
        )
        owned = WebhookDelivery.objects.filter(
            pk=attempt.delivery_id, status=DeliveryStatus.SENDING, claim_token=attempt.token
        ).update(**fields)
        if owned and not attempt.is_test:
            if outcome == AttemptOutcome.SUCCESS:
                if attempt.consecutive_failures:  # as read by the claim; saves a query
                    Webhook.objects.filter(pk=attempt.webhook_id).update(consecutive_failures=0)
            elif outcome == AttemptOutcome.FAILED:
                _count_failure(attempt.webhook_id, result.error)
    return bool(owned)


def _count_failure(webhook_id: int, error: str) -> None:
    """One more failed delivery in a row; at the configured count the hook is disabled."""
    threshold = webhook_settings().disable_after_failures
    Webhook.objects.filter(pk=webhook_id).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = Webhook.objects.values_list("consecutive_failures", flat=True).get(pk=webhook_id)
    if not threshold or failures < threshold:
        return
    reason = f"Disabled after {failures} failed deliveries in a row; last error: {error}"
    disabled = Webhook.objects.filter(pk=webhook_id, status=WebhookStatus.ACTIVE).update(
        status=WebhookStatus.DISABLED, disabled_reason=reason[:2000], updated_at=timezone.now()
    )
    if disabled:
        webhook = Webhook.objects.select_related("registered_model").get(pk=webhook_id)
        logger.warning("Webhook %s disabled: %s", webhook.code, reason)
        webhook_event_emit(
            event=EventType.WEBHOOK_DISABLED,
            registered_model=webhook.registered_model,
            payload_data={
                "disabled_webhook_id": webhook_public_id(webhook),
                "consecutive_failures": failures,
                "last_error": error,
            },
            actor=None,
        )


# --- Test, redeliver, sweep -------------------------------------------------------------------


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
    actor_name = _actor_name(actor)
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
    attempt, result = _build_and_send(_Try.of(delivery, token=token, at=now))
    _record(attempt, result)
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
        transaction.on_commit(lambda: enqueue_deliveries([delivery_id]))


def webhook_deliveries_sweep(*, limit: int = 5000) -> dict[str, int]:
    """Re-queue deliveries that are due but late (never queued, or their message was lost),
    and take back claims older than the lease (the worker died during the try)."""
    config = webhook_settings()
    now = timezone.now()
    expired = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.SENDING,
            is_test=False,
            claimed_at__lt=now - timedelta(seconds=config.claim_lease),
        ).values_list("pk", "claim_token", "attempt_count", "attempts_before", "claimed_at")[:limit]
    )
    reclaimed: list[int] = []
    for pk, token, attempt_count, attempts_before, claimed_at in expired:
        final = attempt_count >= config.max_attempts
        with transaction.atomic():
            taken = WebhookDelivery.objects.filter(
                pk=pk, status=DeliveryStatus.SENDING, claim_token=token
            ).update(
                status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
                claim_token=None,
                next_attempt_at=now,
                last_error="No result: the worker was lost during the try.",
                updated_at=now,
            )
            if taken:
                WebhookDeliveryAttempt.objects.create(
                    delivery_id=pk,
                    number=attempts_before + attempt_count,
                    outcome=AttemptOutcome.FAILED if final else AttemptOutcome.RETRY,
                    error="No result: the worker was lost during the try (its claim expired).",
                    started_at=claimed_at,
                )
                if not final:
                    reclaimed.append(pk)
    late = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now - timedelta(seconds=config.sweep_grace),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = reclaimed + [pk for pk in late if pk not in set(reclaimed)]
    queued = enqueue_deliveries(ids) if ids else 0
    if ids:
        logger.info(
            "Webhook sweep: %d claims taken back, %d late deliveries, %d queued.",
            len(reclaimed),
            len(late),
            queued,
        )
    return {"reclaimed": len(reclaimed), "late": len(late), "queued": queued}
