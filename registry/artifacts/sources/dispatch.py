"""Which kind a source is: :func:`validate_source` at create time (in the request, no network
I/O) and :func:`open_source` in the copy task, each handing the source to the module of its
kind."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from accounts.permissions import require_upload_area
from kernel.errors import RegistryError
from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import SourceError
from registry.artifacts.sources.base import (
    STORE_REFUSAL,
    UPLOADS_URI_PREFIX,
    Opened,
    invalid_source,
    overlaps_store,
    supported_sources,
)
from registry.artifacts.sources.local import LocalFolderSource, file_source_path
from registry.artifacts.sources.models_uri import logged_model_id
from registry.artifacts.sources.s3 import S3Source, validate_s3_source
from registry.artifacts.sources.store import upload_area, upload_path
from registry.artifacts.sources.tracking import (
    HttpArtifactsSource,
    logged_model_parts,
    logged_model_source,
    run_source,
    runs_parts,
    tracking_artifact_path,
    tracking_base,
    tracking_headers,
)
from registry.artifacts.storage import LocalStore, S3Store, get_store


def is_reference(source: str) -> bool:
    """Whether a new version from ``source`` is a reference (nothing copied): under
    ``ARTIFACT_MODE=reference``, for every source but files uploaded to the registry itself (they
    are already in its store, and always copied). Copies between versions keep their source
    version's kind; the service decides those."""
    return artifact_settings().mode == "reference" and not source.startswith(UPLOADS_URI_PREFIX)


def validate_source(source: str, *, actor: Any, reference: bool = False) -> str:
    """``source`` if this registry can copy from it (or, for a ``reference``, point at it),
    else INVALID_PARAMETER_VALUE. ``models:/<name>/...`` copies are the service's.

    Uploaded files are registered only by the user who uploaded them, from their own area
    (``uploads/<username>/``), else PERMISSION_DENIED: admins included, since what another user
    staged there is theirs to register or not."""
    parsed = urlparse(source)
    scheme = parsed.scheme.lower()
    if reference:
        # A pointer the registry never reads; a local path would name a file on whichever
        # machine reads it.
        if len(scheme) < 2 or scheme == "file":
            raise invalid_source(
                source,
                "in reference mode a source is a URI the clients can read (s3://, runs:/, "
                "models:/, mlflow-artifacts:/, https://, ...), not a local path.",
            )
        return source
    if scheme == "s3":
        validate_s3_source(source, parsed.netloc, parsed.path)
    elif scheme == "mlflow-artifacts":
        if source.startswith(UPLOADS_URI_PREFIX):
            area = upload_area(upload_path(source))
            if area is None:
                raise invalid_source(
                    source,
                    f"uploaded files are registered as {UPLOADS_URI_PREFIX}<your username>/<path>.",
                )
            require_upload_area(actor, area, action="register files from")
        else:
            tracking_artifact_path(source)
    elif scheme == "file":
        file_source_path(source)
    elif scheme == "runs":
        runs_parts(source)
    elif scheme == "models" and logged_model_id(source) is not None:
        logged_model_parts(source)
    else:
        raise invalid_source(source, "this kind of source is not supported.")
    return source


def open_source(source: str) -> Opened:
    """The readable source a version names (network lookups happen here, in the task)."""
    parsed = urlparse(source)
    scheme = parsed.scheme.lower()
    try:
        if scheme == "s3":
            if overlaps_store(parsed.netloc, parsed.path):
                raise SourceError(f"Source {source}: {STORE_REFUSAL}")
            return Opened(S3Source(parsed.netloc, parsed.path))
        if scheme == "mlflow-artifacts":
            if not source.startswith(UPLOADS_URI_PREFIX):
                path = tracking_artifact_path(source)
                return Opened(HttpArtifactsSource(tracking_base(), path, tracking_headers()))
            key = upload_path(source)
            store = get_store()
            if isinstance(store, S3Store):
                return Opened(S3Source(store.bucket, store.key(key)))
            assert isinstance(store, LocalStore)
            return Opened(LocalFolderSource(store.path(key), source))
        if scheme == "file":
            return Opened(LocalFolderSource(file_source_path(source), source))
        if scheme == "runs":
            return run_source(source)
        if scheme == "models":
            if logged_model_id(source) is not None:
                return logged_model_source(logged_model_parts(source))
            # models:/<name>/<version> copies read the source version's managed copy
            # (:func:`store_folder_source`); reaching here means that version is gone.
            raise SourceError(
                f"Source {source}: the version it copies was deleted before its files were copied."
            )
    except RegistryError as exc:
        # Settings changed since the version was created (for example a root removed).
        raise SourceError(exc.message) from None
    raise SourceError(f"Source {source} is not supported. {supported_sources()}")
