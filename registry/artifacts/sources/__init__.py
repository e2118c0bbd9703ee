"""What a new model version may name as its ``source``, and how each kind is read.

Where the files of a version come from (docs/architecture.md, "Artifacts"; anything else is
``INVALID_PARAMETER_VALUE`` when the version is created):

- ``s3://bucket/path``: any bucket the service's own credentials can read, except the
  registry's store itself, in either direction (a source neither inside the store nor holding
  it: its copies are served only through the permission-checked API).
- ``mlflow-artifacts:/uploads/<username>/<path>``: files the caller uploaded to this registry
  (``PUT /api/2.0/mlflow-artifacts/artifacts/uploads/<username>/<path>``), from the caller's
  own area only (:func:`upload_area`).
- ``mlflow-artifacts:/<path>``, any other path: the MLflow tracking server's artifact proxy
  (``MLFLOW_TRACKING_SERVER_URL``). The first segment tells the two apart: ``uploads`` is always
  this registry's, and the tracking server's paths start with an experiment id.
- ``runs:/<run_id>/<path>``: the run's artifact location, looked up on the tracking server;
  where the run's folder holds nothing at ``<path>`` (MLflow 3 keeps a model logged in a run
  outside the run's folder), the logged model of that run named ``<path>``.
- ``models:/<logged model id>``: MLflow 3's logged model, its ``artifact_uri`` looked up on the
  tracking server.
- ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/<stage>`` and
  ``models:/<name>/latest``: a version of this registry (a copy between models); the service
  resolves it to a concrete version and checks the caller may read it
  (:func:`registry_version_ref`).
- ``file:///path``: only under a root listed in ``ARTIFACT_FILE_SOURCE_ROOTS`` (none by
  default, ``<data dir>/sources`` in the embedded mode); symlinks are refused.

Locations found through the tracking server are checked against the registry's store like
``s3://`` sources are. In reference mode (``ARTIFACT_MODE=reference``) a source other than an
upload or a copy is a pointer that the registry never reads: any URI with a scheme but
``file:`` is taken as it is (:func:`is_reference`).

:func:`validate_source` runs in the request (no network I/O); :func:`open_source` runs in
the Celery task and does the lookups.

One module per kind, under the common types of ``base``:

- ``base``: what every kind shares: the prefixes, the error for an invalid source, the
  ``Source`` interface and its files, the store's own refusal, ``Opened``.
- ``models_uri``: ``models:/`` URIs that name a version of this registry.
- ``s3``: ``s3://`` sources (and the store's own folders when it is S3).
- ``local``: ``file://`` sources and folders on this machine (the local store's too).
- ``store``: the registry's own store as a source: uploads and managed copies.
- ``tracking``: everything read through the MLflow tracking server (``runs:/``,
  ``models:/<logged model id>``, ``mlflow-artifacts:/``).
- ``dispatch``: :func:`validate_source` and :func:`open_source`, which hand a source to the
  module of its kind.
"""

from registry.artifacts.sources.base import (
    MODELS_URI_PREFIX,
    UPLOADS,
    UPLOADS_URI_PREFIX,
    Opened,
    Source,
    SourceFile,
    supported_sources,
)
from registry.artifacts.sources.dispatch import is_reference, open_source, validate_source
from registry.artifacts.sources.local import LocalFolderSource, file_source_path
from registry.artifacts.sources.models_uri import (
    RegistryVersionRef,
    logged_model_id,
    registry_version_ref,
)
from registry.artifacts.sources.s3 import S3Source
from registry.artifacts.sources.store import store_folder_source, upload_area, upload_path
from registry.artifacts.sources.tracking import HttpArtifactsSource

__all__ = [
    "MODELS_URI_PREFIX",
    "UPLOADS",
    "UPLOADS_URI_PREFIX",
    "HttpArtifactsSource",
    "LocalFolderSource",
    "Opened",
    "RegistryVersionRef",
    "S3Source",
    "Source",
    "SourceFile",
    "file_source_path",
    "is_reference",
    "logged_model_id",
    "open_source",
    "registry_version_ref",
    "store_folder_source",
    "supported_sources",
    "upload_area",
    "upload_path",
    "validate_source",
]
