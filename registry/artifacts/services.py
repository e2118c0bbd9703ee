"""Writes of managed artifacts: the copy of a new version, uploads, and deletion of copies.

The copy runs in a Celery task (``registry.tasks``) queued on commit of the version's
creation. It is idempotent: it only works on a version still ``PENDING_REGISTRATION`` and
finishes with a conditional update, so a redelivered message, a retry racing the periodic
sweep, or a version deleted meanwhile cannot write a READY version's files twice or leave
files behind. Once READY, nothing writes under the version's folder again.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.permissions import require_can_upload_artifacts, require_upload_area
from kernel.backoff import backoff
from kernel.errors import RegistryError
from kernel.metrics import ARTIFACT_COPY_SECONDS
from kernel.queueing import enqueue_on_commit
from registry.artifacts import mlmodel, paths
from registry.artifacts.conf import artifact_settings
from registry.artifacts.copy import Manifest, copy_tree
from registry.artifacts.errors import PathConflictError, SourceError, TransientError
from registry.artifacts.sources import (
    UPLOADS,
    UPLOADS_URI_PREFIX,
    Opened,
    open_source,
    store_folder_source,
    upload_area,
    upload_path,
)
from registry.artifacts.storage import ArtifactStore, get_store
from registry.models import (
    ModelVersion,
    ModelVersionManifest,
    ModelVersionStatus,
)
from registry.provenance import SIGNATURE_NAME
from registry.provenance.keys import keys
from registry.provenance.model_signature import signature_of
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit

logger = logging.getLogger(__name__)


# --- Scheduling (called inside the services' transactions) --------------------------------------

# The tasks are queued by name: ``registry.tasks`` is an edge that calls these services, so the
# services do not import it back.
COPY_TASK = "registry.tasks.model_version_artifacts_copy_task"
DELETE_TASK = "registry.tasks.artifacts_delete_task"


def model_version_copy_schedule(*, model_version: ModelVersion) -> None:
    """Queue the copy of a version just created, once the creating transaction commits (an
    unreachable broker is logged: the copy sweep queues pending versions again later). By
    name: the tasks module imports the services, not the other way round."""
    enqueue_on_commit(current_app.signature(COPY_TASK), model_version.pk)


def artifacts_delete_schedule(*, folder: str) -> None:
    """Delete a folder of the store once the transaction that deleted its owner commits (a
    lost deletion leaves an orphaned folder that is logged and never served)."""
    enqueue_on_commit(current_app.signature(DELETE_TASK), folder)


# --- The copy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryCopy(Exception):  # noqa: N818 - a signal to the task, not an error
    countdown: float


def _pending(model_version_id: int) -> Any:
    return ModelVersion.objects.filter(
        pk=model_version_id, status=ModelVersionStatus.PENDING_REGISTRATION
    )


def _fail(model_version_id: int, message: str) -> None:
    with transaction.atomic():
        failed = _pending(model_version_id).update(
            status=ModelVersionStatus.FAILED_REGISTRATION,
            status_message=message[:10_000],
            updated_at=timezone.now(),
        )
        if failed:
            model_version = ModelVersion.objects.select_related("registered_model").get(
                pk=model_version_id
            )
            webhook_event_emit(
                event=EventType.MODEL_VERSION_REGISTRATION_FAILED,
                registered_model=model_version.registered_model,
                model_version=model_version,
                payload_data={"status": "FAILED_REGISTRATION", "status_message": message[:2000]},
                actor=None,
            )


def model_version_artifacts_copy(*, model_version_id: int, attempt: int = 0) -> None:
    """Copy a pending version's source into the store, verify it, record the manifest and
    make the version READY; or FAILED_REGISTRATION with a ``status_message`` naming the
    problem. Raises :class:`RetryCopy` after a transient failure while retries remain.
    """
    # Claim the attempt: touching the row tells the sweep this version is being worked on.
    if not _pending(model_version_id).update(updated_at=timezone.now()):
        return  # already READY or FAILED, or deleted: nothing to do
    model_version = ModelVersion.objects.select_related("registered_model").get(pk=model_version_id)
    folder = paths.version_folder(model_version)
    store = get_store()
    try:
        opened, expected_digest = _open(model_version)
        # Files an earlier, interrupted attempt left are not part of this copy.
        store.delete_prefix(folder)
        with ARTIFACT_COPY_SECONDS.time():
            # The signature beside another version's copy is not one of its files.
            skip = frozenset({SIGNATURE_NAME}) if model_version.copied_from_id else frozenset()
            manifest = copy_tree(opened.source, store, folder, skip=skip)
        if expected_digest and manifest.digest != expected_digest:
            raise SourceError(
                f"the files of {model_version.source} no longer match its digest "
                f"({manifest.digest}, recorded {expected_digest}): its copy in the store changed."
            )
        signed_by = _sign(model_version, store, folder, manifest)
        # The MLmodel file, kept bounded for the version page (docs/decisions/0020): read back
        # from the verified copy, so the page never reads the store.
        mlmodel_text, mlmodel_truncated = mlmodel.capture(
            store, folder, [entry.path for entry in manifest.files]
        )
    except SourceError as exc:
        _fail(model_version_id, f"Copy failed: {exc.message}")
        _delete_quietly(store, folder)
        return
    except TransientError as exc:
        retries = artifact_settings().copy_max_retries
        if attempt >= retries:
            _fail(
                model_version_id,
                f"Copy failed after {attempt + 1} attempts: {exc.message}",
            )
            return
        countdown = backoff(
            attempt,
            base=artifact_settings().copy_retry_backoff,
            cap=artifact_settings().copy_retry_backoff_max,
        )
        _pending(model_version_id).update(
            status_message=(
                f"Copy attempt {attempt + 1} of {retries + 1} failed: {exc.message} "
                f"Retrying in {countdown:g} s."
            )[:10_000],
            updated_at=timezone.now(),
        )
        raise RetryCopy(countdown) from exc
    except Exception as exc:
        # Anything unclassified is a bug, not a property of the source; without this the
        # version would stay PENDING and the client would wait for it until it gives up.
        logger.exception("Copy of model version %s failed", model_version_id)
        _fail(model_version_id, f"Copy failed with an internal error ({type(exc).__name__}).")
        raise

    # What the lookup learnt fills in what the client did not send (MLflow records the run
    # and the logged model of a version too).
    learnt = {
        name: value
        for name, value in (("run_id", opened.run_id), ("model_id", opened.model_id))
        if value and not getattr(model_version, name)
    }
    with transaction.atomic():
        ready = _pending(model_version_id).update(
            status=ModelVersionStatus.READY,
            status_message="",
            artifact_digest=manifest.digest,
            updated_at=timezone.now(),
            **learnt,
        )
        if ready:
            ModelVersionManifest.objects.create(
                model_version_id=model_version_id,
                total_size=manifest.total_size,
                file_count=len(manifest.files),
                files=manifest.as_json(),
                signature_key_id=signed_by,
                mlmodel_text=mlmodel_text or "",
                mlmodel_truncated=mlmodel_truncated,
                mlmodel_captured=True,
            )
            webhook_event_emit(
                event=EventType.MODEL_VERSION_READY,
                registered_model=model_version.registered_model,
                model_version=model_version,
                payload_data={"status": "READY", "digest": manifest.digest},
                actor=None,
            )
    if not ready:
        # Deleted (or failed by someone else) while we copied: leave nothing behind.
        if not ModelVersion.objects.filter(pk=model_version_id).exists():
            _delete_quietly(store, folder)


def _sign(
    model_version: ModelVersion, store: ArtifactStore, folder: str, manifest: Manifest
) -> str:
    """Write the copy's OpenSSF model-signing signature beside its files
    (docs/decisions/0016-provenance.md); the id of the key that signed, or "" when signing is
    off or a file of the model already has the signature's name."""
    signing = keys()
    if signing.signing is None:
        return ""
    if any(entry.path == SIGNATURE_NAME for entry in manifest.files):
        logger.warning(
            "Model version %s of '%s' has a file named %s, the name of the registry's "
            "signature: its copy is not signed.",
            model_version.version,
            model_version.registered_model.name,
            SIGNATURE_NAME,
        )
        return ""
    signature = signature_of(
        name=model_version.registered_model.name,
        files=[(entry.path, entry.sha256) for entry in manifest.files],
        private_key=signing.signing,
    )
    store.write(f"{folder}/{SIGNATURE_NAME}", io.BytesIO(signature))
    return signing.current_key_id


def _open(model_version: ModelVersion) -> tuple[Opened, str]:
    """The source to copy from, and the digest its files must have ("" where none is known).

    A copy of another version reads that version's managed copy in the store, which must still
    hold exactly what its digest says; anything else is looked up from ``source``."""
    if model_version.copied_from_id is not None:
        copied = (
            ModelVersion.objects.select_related("registered_model")
            .filter(pk=model_version.copied_from_id)
            .first()
        )
        if copied is not None:
            return Opened(store_folder_source(paths.version_folder(copied))), copied.artifact_digest
    return open_source(model_version.source), ""


def _delete_quietly(store: ArtifactStore, folder: str) -> None:
    """Remove a partial copy; if the store is unreachable, an orphaned folder is logged (it is
    never served: only READY versions' folders are)."""
    try:
        store.delete_prefix(folder)
    except (SourceError, TransientError) as exc:
        logger.warning("Could not delete the partial copy %s: %s", folder, exc)


def model_versions_pending_sweep() -> list[int]:
    """Ids of versions pending longer than any live attempt could leave them untouched: their
    copy message was lost (broker, worker crash). The task re-queues them."""
    quiet = (
        settings.CELERY_TASK_TIME_LIMIT
        + artifact_settings().copy_retry_backoff_max
        + artifact_settings().sweep_interval
    )
    cutoff = timezone.now() - timedelta(seconds=quiet)
    return list(
        ModelVersion.objects.filter(
            status=ModelVersionStatus.PENDING_REGISTRATION, updated_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )


def artifacts_delete(*, folder: str) -> None:
    """Delete a folder of the store (a deleted version's or model's copy)."""
    paths.clean_relative_path(folder, what="folder")
    get_store().delete_prefix(folder)


# --- Uploads ------------------------------------------------------------------------------------


def artifact_upload(*, actor: Any, path: str, stream: IO[bytes]) -> str:
    """Stream an uploaded file into the actor's own area, ``uploads/<username>/...``. Returns
    its key.

    Only the uploads area takes writes: managed copies are written by the copy alone. Nobody,
    admins included, writes into another user's area: its owner may be about to register it.
    """
    key = paths.clean_relative_path(path)
    parts = key.split("/")
    if parts[0] != UPLOADS or len(parts) < 3:
        raise RegistryError.invalid(
            f"Cannot write '{path}': uploads go under uploads/<your username>/<path>; managed "
            "copies of model versions are written by the registry only and never change."
        )
    require_can_upload_artifacts(actor)
    require_upload_area(actor, parts[1], action="write to")
    try:
        get_store().write(key, stream)
    except PathConflictError as exc:
        raise RegistryError.invalid(
            f"Cannot write '{key}': {exc.message} Delete what is there first, or upload to "
            "another path."
        ) from None
    return key


def artifact_upload_delete(*, actor: Any, path: str) -> None:
    """Delete an uploaded file or folder (or a whole area) of the actor's own area; admins may
    delete in any area, to clean up. Deleting a path that holds nothing succeeds and changes
    nothing, as ``mlflow server`` answers (its client treats the delete as idempotent)."""
    key = paths.clean_relative_path(path)
    area = upload_area(key)
    if area is None:
        raise RegistryError.invalid(
            f"Cannot delete '{path}': only uploads/<your username>/<path> can be deleted."
        )
    require_can_upload_artifacts(actor)
    require_upload_area(actor, area, action="delete from", admins_may=True)
    get_store().delete_prefix(key)


def artifact_uploads_expire(*, now: datetime | None = None) -> int:
    """Delete the uploaded files last written more than ``ARTIFACT_UPLOAD_TTL_SECONDS`` before
    ``now`` (default: the current time), in every area. Returns how many were deleted.

    Uploads are a staging area: a registered version has its own copy, and files never
    registered must not stay readable, and stored, for ever. Files of versions still
    ``PENDING_REGISTRATION`` are kept, whatever their age: their copy may be reading them.
    A TTL of 0 keeps every upload. Celery beat runs this hourly (``registry.tasks``).
    """
    ttl = artifact_settings().upload_ttl
    if not ttl:
        return 0
    cutoff = (now or timezone.now()) - timedelta(seconds=ttl)
    pending = []
    for source in ModelVersion.objects.filter(
        status=ModelVersionStatus.PENDING_REGISTRATION, source__startswith=UPLOADS_URI_PREFIX
    ).values_list("source", flat=True):
        try:
            key = upload_path(source)
        except RegistryError:
            continue  # not a path the copy could read either
        if key != UPLOADS:
            pending.append(key[len(UPLOADS) + 1 :])

    def registering(relative: str) -> bool:
        return any(relative == key or relative.startswith(key + "/") for key in pending)

    deleted = get_store().delete_older_than(UPLOADS, cutoff, keep=registering)
    if deleted:
        logger.info("Deleted %d uploaded files older than %s.", deleted, cutoff.isoformat())
    return deleted
