"""Sending Celery tasks from services: after the commit, and never failing a committed change.

A task queued inside a transaction could run before the rows it reads are committed, or for a
change that is rolled back: services queue with :func:`enqueue_on_commit`. A broker that cannot
be reached must not fail a change that is already committed either: the rows are there, and
the periodic sweeps (artifact copies, webhook deliveries) queue what was not sent once the
broker is back. So :func:`enqueue` tries once more at once, then logs and gives up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

logger = logging.getLogger(__name__)

_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1}


def enqueue(task: Any, calls: Sequence[tuple[Any, ...]], *, countdown: float | None = None) -> int:
    """Send one message of ``task`` per argument tuple of ``calls``; returns how many were sent.

    Stops at the first broker error (the rest would meet it too), logging how many were not
    sent.
    """
    queued = 0
    for args in calls:
        try:
            task.apply_async(args, countdown=countdown, retry=True, retry_policy=_RETRY_POLICY)
        except (KombuOperationalError, OSError) as exc:
            logger.warning(
                "Could not queue %d %s message(s) (%s: %s); a sweep will queue them.",
                len(calls) - queued,
                task.name,
                type(exc).__name__,
                exc,
            )
            break
        queued += 1
    return queued


def enqueue_on_commit(task: Any, *args: Any, countdown: float | None = None) -> None:
    """Send ``task(*args)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue(task, [args], countdown=countdown))
