"""The registry's own store read as a source: files uploaded to ``uploads/<username>/`` and
the managed copy of another version. No user-given source reaches the store any other way."""

from __future__ import annotations

from urllib.parse import urlparse

from kernel.errors import RegistryError
from registry.artifacts import paths
from registry.artifacts.sources.base import UPLOADS, UPLOADS_URI_PREFIX, Source, invalid_source
from registry.artifacts.sources.local import LocalFolderSource
from registry.artifacts.sources.s3 import S3Source
from registry.artifacts.storage import LocalStore, S3Store, get_store


def upload_path(source: str) -> str:
    """The store key (``uploads/...``) that a ``mlflow-artifacts:/uploads/`` source names."""
    parsed = urlparse(source)
    if parsed.netloc or not source.startswith(UPLOADS_URI_PREFIX):
        raise invalid_source(
            source, f"uploaded files are registered as {UPLOADS_URI_PREFIX}<path>."
        )
    try:
        return paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise invalid_source(source, exc.message) from None


def upload_area(key: str) -> str | None:
    """The area a store key of ``uploads/`` lies in: its second segment, the username of the
    user who uploaded it (``uploads/<username>/...``). None for ``uploads`` itself and for keys
    outside it."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == UPLOADS else None


def store_folder_source(folder: str) -> Source:
    """A folder of the registry's own store (a managed copy), read by the copy of one version
    into another. Only the task builds this; no user-given source reaches the store."""
    store = get_store()
    if isinstance(store, S3Store):
        return S3Source(store.bucket, store.key(folder))
    assert isinstance(store, LocalStore)
    return LocalFolderSource(store.path(folder), f"the managed copy {folder}")
