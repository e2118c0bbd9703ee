"""Celery tasks of the registry: thin adapters that take ids and call a service.

The copy is idempotent (it only acts on a version still PENDING_REGISTRATION and finishes with
a conditional update), so it acknowledges late: a worker that dies mid-copy leaves the message
to another worker instead of leaving the version pending.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from kernel.backoff import backoff
from kernel.database import DATABASE_UNAVAILABLE
from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import TransientError
from registry.artifacts.services import (
    RetryCopy,
    artifact_uploads_expire,
    artifacts_delete,
    model_version_artifacts_copy,
    model_versions_pending_sweep,
)
from registry.services import alias_requests_expire, transition_requests_expire
from registry.services.import_run import import_run_execute
from registry.services.trail import trail_head_export


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def model_version_artifacts_copy_task(
    self: Any, model_version_id: int, attempt: int | None = None
) -> None:

    attempt = self.request.retries if attempt is None else attempt
    try:
        model_version_artifacts_copy(model_version_id=model_version_id, attempt=attempt)
    except RetryCopy as retry:
        # The service bounds the attempts (ARTIFACT_COPY_MAX_RETRIES) and picks the backoff.
        raise self.retry(
            countdown=retry.countdown,
            args=(),
            kwargs={"model_version_id": model_version_id, "attempt": attempt + 1},
        ) from None
    except DATABASE_UNAVAILABLE as exc:
        # The database is restarting or failing over: not the copy's fault, so the same
        # attempt again shortly, instead of a version left pending until the sweep.
        raise self.retry(
            countdown=artifact_settings().copy_retry_backoff,
            args=(),
            kwargs={"model_version_id": model_version_id, "attempt": attempt},
            exc=exc,
        ) from None


@shared_task(bind=True, acks_late=True, max_retries=8)
def artifacts_delete_task(self: Any, folder: str) -> None:
    try:
        artifacts_delete(folder=folder)
    except TransientError as exc:
        raise self.retry(countdown=backoff(self.request.retries, base=10, cap=600)) from exc


@shared_task
def model_versions_pending_sweep_task() -> None:
    for model_version_id in model_versions_pending_sweep():
        model_version_artifacts_copy_task.delay(model_version_id)


@shared_task
def artifact_uploads_expire_task() -> int:
    """Delete uploaded files older than ``ARTIFACT_UPLOAD_TTL_SECONDS`` (beat, hourly). A store
    that does not answer fails this run; the next one deletes what it left."""
    return artifact_uploads_expire()


@shared_task
def transition_requests_expire_task() -> int:
    """Close the transition requests whose stage policy's ``request_ttl`` ran out, and the
    alias requests whose alias policy's did (beat)."""
    return transition_requests_expire() + alias_requests_expire()


@shared_task
def import_run_task(run_id: int) -> None:
    """An import started from the API (docs/migrating.md); claims its run, so a second
    delivery does nothing. Not acknowledged late: a worker lost mid-run leaves the run
    RUNNING, and a new run resumes where it stopped."""
    import_run_execute(run_id=run_id)


@shared_task
def trail_head_export_task() -> dict[str, Any]:
    """Export the heads of the hash chains (a log line, and the optional webhook event)."""
    heads = trail_head_export()
    return {
        "audit_head": heads.audit_head,
        "audit_rows": heads.audit_rows,
        "trail_root": heads.trail_root,
        "trail_rows": heads.trail_rows,
    }
