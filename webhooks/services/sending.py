"""Building and sending one try of one delivery: its body (rendered on the first try), its
headers and signature, the POST. No database access: the worker (webhooks/services/delivery.py)
claims the delivery before and records the result after."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from webhooks import http, payloads, signing
from webhooks.conf import webhook_settings
from webhooks.models import WebhookDelivery, WebhookFlavor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
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
        webhook_id = payloads.public_id(self.flavor, self.webhook_code)
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


@dataclass(frozen=True)
class Try:
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
    source: Source | None = None
    # The body was rendered by this try: the record keeps it for the next ones.
    rendered: bool = False

    @classmethod
    def of(cls, delivery: WebhookDelivery, *, token: uuid.UUID, at: datetime) -> Try:
        webhook = delivery.webhook
        event = delivery.event
        source = None
        if not delivery.body:
            source = Source(
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


def _headers(attempt: Try, body: bytes) -> dict[str, str]:
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


def _send(attempt: Try) -> http.HttpResult:
    body = attempt.body.encode("utf-8")
    return http.post(
        attempt.url,
        body=body,
        headers=_headers(attempt, body),
        verify_tls=attempt.verify_tls,
    )


def not_sent(reason: str) -> http.HttpResult:
    """A final failure without a request: retrying cannot help until the hook is changed."""
    return http.HttpResult(None, "", f"Not sent: {reason}", 0, False)


def build_and_send(attempt: Try) -> tuple[Try, http.HttpResult]:
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
        return attempt, not_sent(f"{exc}.")
    except Exception:
        logger.exception("Webhook delivery %s could not be built or sent", attempt.code)
        return attempt, not_sent("the request could not be built (see the worker's log).")
