"""Reads of managed artifacts: listings, downloads and manifests, each permission-checked.

Artifact paths name one of two areas of the store:

- ``models/<model id>/<version>/...``: a version's managed copy. Readable with ``CAN_READ`` on
  its registered model, once the version is READY.
- ``uploads/<username>/...``: files uploaded for versions still to be registered, one area per
  user. A user reads only their own area (and needs the right to upload); registry admins read
  every area, to clean up. Listing ``uploads`` itself shows a user only their own folder.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import IO, Any

from accounts.permissions import (
    Level,
    is_admin,
    own_upload_area,
    require_can_upload_artifacts,
    require_level,
    require_upload_area,
)
from kernel.errors import RegistryError
from registry import validation
from registry.artifacts import paths
from registry.artifacts.errors import NotFoundError
from registry.artifacts.sources import UPLOADS, upload_area
from registry.artifacts.storage import Entry, get_store
from registry.errors import model_version_not_found
from registry.models import ModelVersion, ModelVersionManifest, ModelVersionStatus

ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts/artifacts"


def _areas_message(key: str) -> str:
    return (
        f"No artifacts at '{key}': artifact paths are models/<model id>/<version>/... (from "
        "get-download-uri) or uploads/<your username>/<path>."
    )


def _version_of(key: str) -> ModelVersion | None:
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "models" or not parts[2].isdigit():
        return None
    try:
        code = uuid.UUID(parts[1])
    except ValueError:
        return None
    return (
        ModelVersion.objects.select_related("registered_model")
        .filter(registered_model__code=code, version=int(parts[2]))
        .first()
    )


def _authorize(actor: Any, key: str) -> None:
    """Refuse unless the actor may read ``key``: CAN_READ on its model, or, in ``uploads/``, the
    upload right and the key in their own area (any area for admins). ``uploads`` itself passes
    here; :func:`artifact_list` filters what it shows."""
    if key.split("/", 1)[0] == UPLOADS:
        require_can_upload_artifacts(actor)
        area = upload_area(key)
        if area is not None:
            require_upload_area(actor, area, action="read", admins_may=True)
        return
    model_version = _version_of(key)
    if model_version is None:
        raise RegistryError.not_found(_areas_message(key))
    require_level(
        actor, model_version.registered_model, Level.CAN_READ, action="download the artifacts of"
    )
    if model_version.status != ModelVersionStatus.READY:
        raise RegistryError.not_found(
            f"Model version {model_version.version} of '{model_version.registered_model.name}' "
            f"is {model_version.status}: its artifacts are not available "
            + (f"({model_version.status_message})." if model_version.status_message else "yet.")
        )


def artifact_list(*, actor: Any, path: str) -> list[Entry]:
    """The entries directly under ``path`` (empty when it is a file or does not exist)."""
    key = paths.clean_relative_path(path, what="path")
    _authorize(actor, key)
    entries = get_store().list_dir(key)
    if key == UPLOADS and not is_admin(actor):
        # Each user sees their own area, not who else has one.
        entries = [entry for entry in entries if entry.name == own_upload_area(actor)]
    return entries


@dataclass(frozen=True)
class Download:
    stream: IO[bytes]
    size: int
    name: str


def artifact_open(*, actor: Any, path: str) -> Download:
    key = paths.clean_relative_path(path, what="path")
    _authorize(actor, key)
    store = get_store()
    size = store.size(key)
    if size is None:
        raise RegistryError.not_found(f"No artifact file at '{key}'.")
    try:
        stream = store.open(key)
    except NotFoundError:
        raise RegistryError.not_found(f"No artifact file at '{key}'.") from None
    return Download(stream=stream, size=size, name=key.rsplit("/", 1)[-1])


def model_version_artifacts_path(*, model_version: ModelVersion) -> str:
    """The version's folder under the artifact endpoints (relative to ``ARTIFACTS_PREFIX``)."""
    return paths.version_folder(model_version)


def model_version_manifest(*, actor: Any, name: Any, version: Any) -> ModelVersion:
    """The version with ``manifest`` (None until READY); needs CAN_READ on its model."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    try:
        model_version = ModelVersion.objects.select_related("registered_model").get(
            registered_model__name=name, version=number
        )
    except ModelVersion.DoesNotExist:
        raise model_version_not_found(name, number) from None
    require_level(
        actor, model_version.registered_model, Level.CAN_READ, action="read the manifest of"
    )
    model_version.manifest_or_none = ModelVersionManifest.objects.filter(
        model_version=model_version
    ).first()
    return model_version


def model_version_files(
    *, model_version: ModelVersion
) -> tuple[ModelVersionManifest | None, list[dict[str, Any]]]:
    """The version's manifest (None before it has one) and, once the version is READY, its
    files, each with the ``url`` that downloads it; the caller checked that the actor may read
    the version."""
    manifest = ModelVersionManifest.objects.filter(model_version=model_version).first()
    if manifest is None or model_version.status != ModelVersionStatus.READY:
        return manifest, []
    folder = model_version_artifacts_path(model_version=model_version)
    return manifest, [
        {**item, "url": f"{ARTIFACTS_PREFIX}/{folder}/{item['path']}"} for item in manifest.files
    ]


def model_version_registration_wait(*, model_version: ModelVersion, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for a pending version's copy to end (READY or FAILED),
    looking at its row at growing intervals (10 ms up to 100 ms).

    ``model-versions/create`` calls this after its commit, so that a quick copy answers READY:
    the ``mlflow`` client sleeps 3 s before it looks at a PENDING_REGISTRATION version again.
    Once the copy ended, the fields it changed are set on ``model_version``, so the answer is
    rendered without reading the version again (docs/decisions/0021)."""
    if model_version.status != ModelVersionStatus.PENDING_REGISTRATION or timeout <= 0:
        return
    deadline = time.monotonic() + timeout
    pause = 0.01
    ended = (
        ModelVersion.objects.filter(pk=model_version.pk)
        .exclude(status=ModelVersionStatus.PENDING_REGISTRATION)
        .values(*COPY_RESULT_FIELDS)
    )
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.1)
        result = ended.first()
        if result is not None:
            for field, value in result.items():
                setattr(model_version, field, value)
            return


#: The fields of a version that the end of its copy may change (``services._fail``, the end of
#: ``services.model_version_copy``), set on the version the create call answers with.
COPY_RESULT_FIELDS = (
    "status",
    "status_message",
    "artifact_digest",
    "run_id",
    "model_id",
    "updated_at",
)
