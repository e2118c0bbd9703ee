"""The delivery worker: claim a delivery, build and send the try, record it.

:func:`webhook_delivery_send` (the task's service) claims the delivery with a conditional
UPDATE, renders its body on the first try (then keeps it, so every retry sends the same bytes),
sends it outside any transaction, writes a :class:`WebhookDeliveryAttempt`, and either marks it
delivered, schedules a retry (capped exponential backoff with jitter) or marks it ``FAILED``. A
delivery that cannot be built or sent because of its hook's settings (a body over
``WEBHOOKS_MAX_BODY_BYTES``, a template or header that cannot be used) fails at once, with the
reason. A hook whose deliveries fail ``DISABLE_AFTER_FAILURES`` times in a row is disabled, and a
``WEBHOOK_DISABLED`` event says so.

This is the worker's hot path. On PostgreSQL a successful try costs two statements: the claim
(a conditional UPDATE ... RETURNING joined to the hook and the event, so nothing is read again)
and the record (one statement whose CTEs insert the attempt row and move the delivery on, still
conditional on the claim). Both commit without waiting for the WAL flush; see
:func:`_bookkeeping` for why that is safe. Other databases take the same steps through the ORM.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from kernel.backoff import backoff
from kernel.metrics import WEBHOOK_DELIVERIES
from webhooks import crypto, http, payloads
from webhooks.conf import webhook_settings
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookStatus,
)
from webhooks.services import outbox
from webhooks.services.matching import hooks_may_match_refresh
from webhooks.services.sending import Source, Try, build_and_send, not_sent

logger = logging.getLogger(__name__)

# A task may run a moment before the row's next_attempt_at by the database's clock.
_CLOCK_SLACK = timedelta(seconds=1)


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


def _claim(delivery_id: int, *, now: datetime, token: uuid.UUID) -> Try | None:
    """Take the delivery if it is PENDING and due (a conditional UPDATE, never
    check-then-act); ``None`` if it is not, or if another worker took it first."""
    if _postgresql():
        params: dict[str, Any] = {
            "id": delivery_id,
            "now": now,
            "due": now + _CLOCK_SLACK,
            "token": token,
        }
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
            source = Source(
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
        return Try(
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
    return Try.of(delivery, token=token, at=now)


def webhook_delivery_send(*, delivery_id: int) -> str:
    """One try of one delivery. Idempotent: a delivery that is not due and PENDING is left
    alone, so duplicate task messages (sweep, acks_late redelivery) are harmless."""
    attempt = _claim(delivery_id, now=timezone.now(), token=uuid.uuid4())
    if attempt is None:
        return "skipped"
    if attempt.webhook_status == WebhookStatus.DISABLED:
        result = not_sent("the webhook is disabled.")
    else:
        attempt, result = build_and_send(attempt)
    outcome = record_try(attempt, result)
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    return outcome


def _outcome(attempt: Try, result: http.HttpResult) -> str:
    if result.ok:
        return AttemptOutcome.SUCCESS
    if (
        result.retryable
        and not attempt.is_test
        and attempt.attempt_count < webhook_settings().max_attempts
    ):
        return AttemptOutcome.RETRY
    return AttemptOutcome.FAILED


#: The delivery's state after a try with each outcome.
_NEXT_STATUS: dict[str, str] = {
    AttemptOutcome.SUCCESS: DeliveryStatus.SUCCESS,
    AttemptOutcome.RETRY: DeliveryStatus.PENDING,
    AttemptOutcome.FAILED: DeliveryStatus.FAILED,
}


@dataclass(frozen=True)
class _Record:
    """What a finished try writes, decided once for both ways of writing it: the attempt row,
    the delivery's new state (only while ``token`` still holds the claim) and the hook's
    failure count. All but ``counts_failure`` are the parameters of ``_RECORD_SQL``."""

    id: int
    token: uuid.UUID
    webhook_id: int
    # The attempt row.
    number: int
    outcome: str
    response_status: int | None
    error: str
    excerpt: str
    duration_ms: int
    started_at: datetime
    # The delivery's new state; a ``None`` leaves the field as it is.
    status: str
    now: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    body: str | None
    # A success ends a run of failures; the count as read by the claim saves a write.
    reset_failures: bool
    # A final failure adds to the run (test deliveries count for nothing).
    counts_failure: bool

    @classmethod
    def of(
        cls, attempt: Try, result: http.HttpResult, outcome: str, *, now: datetime, retry_in: float
    ) -> _Record:
        success = outcome == AttemptOutcome.SUCCESS
        return cls(
            id=attempt.delivery_id,
            token=attempt.token,
            webhook_id=attempt.webhook_id,
            number=attempt.attempts_before + attempt.attempt_count,
            outcome=outcome,
            response_status=result.status,
            error=result.error,
            excerpt=result.body_excerpt[:1000],
            duration_ms=result.duration_ms,
            started_at=attempt.started_at,
            status=_NEXT_STATUS[outcome],
            now=now,
            delivered_at=now if success else None,
            next_attempt_at=(
                now + timedelta(seconds=retry_in) if outcome == AttemptOutcome.RETRY else None
            ),
            body=attempt.body if attempt.rendered else None,
            reset_failures=success and not attempt.is_test and attempt.consecutive_failures > 0,
            counts_failure=outcome == AttemptOutcome.FAILED and not attempt.is_test,
        )


def record_try(attempt: Try, result: http.HttpResult) -> str:
    """Write the attempt and the delivery's new state; count failures on the hook.

    Only the holder of the claim may move the delivery on: if the sweep took the claim back
    meanwhile (a try that outlived its lease), the other holder decides. The attempt row is
    written either way, since the try happened.

    On PostgreSQL a success or a retry is written by one statement; a final failure (rare, and
    it may disable the hook and emit an event) and every try on other databases go through the
    ORM in one transaction. Both write the same :class:`_Record`.
    """
    outcome = _outcome(attempt, result)
    retry_in = backoff_seconds(attempt.attempt_count) if outcome == AttemptOutcome.RETRY else 0.0
    record = _Record.of(attempt, result, outcome, now=timezone.now(), retry_in=retry_in)
    if record.outcome != AttemptOutcome.FAILED and _postgresql():
        owned = _write_in_one_statement(record)
    else:
        owned = _write_in_a_transaction(record)
    if owned and record.outcome == AttemptOutcome.RETRY:
        delivery_id = record.id
        # Immediately when outside a transaction (the statement has committed).
        transaction.on_commit(lambda: outbox.enqueue_deliveries([delivery_id], countdown=retry_in))
    if record.outcome != AttemptOutcome.SUCCESS:
        logger.info(
            "Webhook delivery %s to %s: %s (%s)",
            attempt.code,
            http.sanitize_url(attempt.url),
            record.outcome,
            result.error,
        )
    return str(record.outcome)


def _write_in_one_statement(record: _Record) -> bool:
    """Attempt row, delivery state and (after a success) the hook's failure count, in one
    statement and so one transaction. PostgreSQL only."""
    # The fields as they are: ``dataclasses.asdict`` would deep-copy each value (the UUID, the
    # datetimes, the body), which cost a tenth of a millisecond per delivery for nothing.
    params = {
        field.name: getattr(record, field.name)
        for field in fields(record)
        if field.name != "counts_failure"
    }
    with connection.cursor() as cursor:
        cursor.execute(_RECORD.now(), params)
        row = cursor.fetchone()
    return bool(row and row[0])


def _write_in_a_transaction(record: _Record) -> bool:
    """The same writes through the ORM, with a final failure's count (which may disable the
    hook) in the same transaction."""
    fields: dict[str, Any] = {
        "status": record.status,
        "last_response_status": record.response_status,
        "last_error": record.error,
        "updated_at": record.now,
        "claim_token": None,
    }
    # As COALESCE does in the statement: None leaves the field as it is.
    for field in ("body", "delivered_at", "next_attempt_at"):
        if getattr(record, field) is not None:
            fields[field] = getattr(record, field)
    with _bookkeeping():
        WebhookDeliveryAttempt.objects.create(
            delivery_id=record.id,
            number=record.number,
            outcome=record.outcome,
            response_status=record.response_status,
            error=record.error,
            response_excerpt=record.excerpt,
            duration_ms=record.duration_ms,
            started_at=record.started_at,
        )
        owned = WebhookDelivery.objects.filter(
            pk=record.id, status=DeliveryStatus.SENDING, claim_token=record.token
        ).update(**fields)
        if owned and record.reset_failures:
            Webhook.objects.filter(pk=record.webhook_id).update(consecutive_failures=0)
        elif owned and record.counts_failure:
            _count_failure(record.webhook_id, record.error)
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
        # A hook that stopped matching: its models' flags may turn False (docs/decisions/0021).
        hooks_may_match_refresh(registered_model_ids=[webhook.registered_model_id])
        logger.warning("Webhook %s disabled: %s", webhook.code, reason)
        outbox.webhook_event_emit(
            event=EventType.WEBHOOK_DISABLED,
            registered_model=webhook.registered_model,
            payload_data={
                "disabled_webhook_id": payloads.webhook_public_id(webhook),
                "consecutive_failures": failures,
                "last_error": error,
            },
            actor=None,
        )
