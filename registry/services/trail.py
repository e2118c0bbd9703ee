"""The periodic export of the trail's hash-chain heads
(docs/decisions/0017-tamper-evident-trail.md): a log line, and a ``TRAIL_HEAD_EXPORTED`` event
for the registry-wide hooks that subscribe to it, so copies of the heads are kept where the
database's administrators cannot rewrite them."""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.db import transaction

from registry.selectors.trail import TrailHeads, trail_heads
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit

logger = logging.getLogger(__name__)


def trail_head_export() -> TrailHeads:
    heads = trail_heads()
    logger.info(
        "trail heads: audit_head=%s audit_rows=%d trail_root=%s trail_rows=%d trail_chains=%d",
        heads.audit_head,
        heads.audit_rows,
        heads.trail_root,
        heads.trail_rows,
        heads.trail_chains,
    )
    with transaction.atomic():
        webhook_event_emit(
            event=EventType.TRAIL_HEAD_EXPORTED,
            registered_model=None,
            payload_data=asdict(heads),
            actor=None,
        )
    return heads
