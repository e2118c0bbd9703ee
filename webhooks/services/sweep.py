"""The sweep (Celery beat): re-queues what is due but was never picked up (broker down at
commit, lost message) and takes back claims whose worker died."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from webhooks.conf import webhook_settings
from webhooks.models import AttemptOutcome, DeliveryStatus, WebhookDelivery, WebhookDeliveryAttempt
from webhooks.services import outbox

logger = logging.getLogger(__name__)


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
        assert claimed_at is not None  # the filter took claims older than the lease only
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
    queued = outbox.enqueue_deliveries(ids) if ids else 0
    if ids:
        logger.info(
            "Webhook sweep: %d claims taken back, %d late deliveries, %d queued.",
            len(reclaimed),
            len(late),
            queued,
        )
    return {"reclaimed": len(reclaimed), "late": len(late), "queued": queued}
