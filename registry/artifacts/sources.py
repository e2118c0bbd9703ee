"""What a new model version may name as its ``source``, and how each kind is read.

Supported (anything else is ``INVALID_PARAMETER_VALUE`` when the version is created):

- ``s3://bucket/path``: any bucket the service's own credentials can read, except the
  registry's store itself (its copies are served only through the permission-checked API).
- ``mlflow-artifacts:/uploads/<path>``: files uploaded through the service's artifact
  endpoints (``PUT /api/2.0/mlflow-artifacts/artifacts/uploads/<path>``).
- ``file:///path``: only under a root listed in ``ARTIFACT_FILE_SOURCE_ROOTS`` (none by
  default, ``<data dir>/sources`` in the embedded mode); symlinks are refused.
- ``runs:/<run_id>/<path>``: when ``MLFLOW_TRACKING_SERVER_URL`` is set, the run's artifact
  location is looked up through that server's REST API and copied from there (``s3://`` or the
  tracking server's own ``mlflow-artifacts`` proxy).

:func:`validate_source` runs in the request (no network I/O); :func:`open_source` runs in
the Celery task and does the lookups.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote, urlencode, urlparse

from django.conf import settings

from registry.artifacts import paths
from registry.artifacts.errors import SourceError, TransientError
from registry.artifacts.storage import (
    LocalStore,
    S3Store,
    _StreamingBody,
    get_store,
    s3_client,
    storage_error,
)
from registry.errors import RegistryError

UPLOADS = "uploads"
UPLOADS_URI_PREFIX = "mlflow-artifacts:/uploads/"
_RUN_ID = re.compile(r"^[\w-]{1,256}$")


def supported_sources() -> str:
    """One sentence naming what this deployment accepts, for error messages."""
    kinds = [
        "s3://<bucket>/<path>",
        f"{UPLOADS_URI_PREFIX}<path> (files uploaded through "
        "/api/2.0/mlflow-artifacts/artifacts/uploads/<path>)",
    ]
    roots = settings.ARTIFACTS["FILE_SOURCE_ROOTS"]
    if roots:
        kinds.append(f"file:// paths under {', '.join(str(root) for root in roots)}")
    if settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"]:
        kinds.append("runs:/<run_id>/<path>")
    return "Supported sources: " + "; ".join(kinds) + "."


def _invalid(source: str, why: str) -> RegistryError:
    return RegistryError.invalid(
        f"Invalid model version source '{source}': {why} " + supported_sources()
    )


# --- Validation at create time ------------------------------------------------------------------


def validate_source(source: str) -> str:
    """``source`` if this registry can copy from it, else INVALID_PARAMETER_VALUE."""
    parsed = urlparse(source)
    scheme = parsed.scheme.lower()
    if scheme == "s3":
        _validate_s3(source, parsed.netloc, parsed.path)
    elif scheme == "mlflow-artifacts":
        upload_path(source)
    elif scheme == "file":
        file_source_path(source)
    elif scheme == "runs":
        _runs_parts(source)
    else:
        raise _invalid(source, "this kind of source is not supported.")
    return source


def _validate_s3(source: str, bucket: str, key: str) -> None:
    if not bucket:
        raise _invalid(source, "it names no bucket.")
    if key.strip("/"):
        try:
            paths.clean_relative_path(key.lstrip("/").rstrip("/"), what="source path")
        except RegistryError as exc:
            raise _invalid(source, exc.message) from None
    store = get_store()
    if isinstance(store, S3Store) and bucket == store.bucket:
        inside = key.strip("/")
        if not store.prefix or inside == store.prefix or inside.startswith(store.prefix + "/"):
            raise _invalid(
                source,
                "it lies inside the registry's own artifact store. Register uploads as "
                f"{UPLOADS_URI_PREFIX}<path>.",
            )


def upload_path(source: str) -> str:
    """The store key (``uploads/...``) that a ``mlflow-artifacts:`` source names."""
    parsed = urlparse(source)
    if parsed.netloc or not source.startswith(UPLOADS_URI_PREFIX):
        raise _invalid(source, f"uploaded files are registered as {UPLOADS_URI_PREFIX}<path>.")
    try:
        return paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise _invalid(source, exc.message) from None


def file_source_path(source: str) -> Path:
    """The local path a ``file://`` source names, checked against the allowed roots: no
    traversal, no symlink anywhere on the way (the resolved path must be the path itself)."""
    roots = [Path(root) for root in settings.ARTIFACTS["FILE_SOURCE_ROOTS"]]
    if not roots:
        raise _invalid(
            source, "file:// sources are disabled (ARTIFACT_FILE_SOURCE_ROOTS is empty)."
        )
    parsed = urlparse(source)
    if parsed.netloc not in ("", "localhost"):
        raise _invalid(source, "file:// sources must be local paths (file:///path).")
    try:
        relative = paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise _invalid(source, exc.message) from None
    path = Path("/" + relative)
    if os.path.realpath(path) != str(path):
        raise _invalid(source, "the path goes through a symlink; symlinks are refused.")
    if not any(path == root or root in path.parents for root in roots):
        raise _invalid(source, "the path is not under an allowed root.")
    if path.is_dir():
        for folder, dirs, files in os.walk(path, followlinks=False):
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    raise _invalid(source, "it contains a symlink; symlinks are refused.")
    return path


def _runs_parts(source: str) -> tuple[str, str]:
    if not settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"]:
        raise _invalid(
            source, "runs:/ sources need an MLflow tracking server (MLFLOW_TRACKING_SERVER_URL)."
        )
    match = re.match(r"^runs:/([^/]+)(?:/(.*))?$", source)
    if not match or not _RUN_ID.match(match.group(1)):
        raise _invalid(source, "expected runs:/<run_id>/<path>.")
    try:
        sub = paths.clean_relative_path(match.group(2) or "", what="source path", allow_empty=True)
    except RegistryError as exc:
        raise _invalid(source, exc.message) from None
    return match.group(1), sub


# --- Reading at copy time -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the source's root, clean
    size: int | None
    etag: str = ""


class Source(Protocol):
    description: str

    def files(self) -> list[SourceFile]:
        """Every file of the source; raises :class:`SourceError` when there is none."""

    def open(self, file: SourceFile) -> IO[bytes]:
        """A stream of the file's bytes (exactly the version listed, where the store can tell)."""


def _clean_member(description: str, relative: str) -> str:
    try:
        return paths.clean_relative_path(relative, what="file name")
    except RegistryError:
        raise SourceError(
            f"Source {description} holds an unsafe file name: {relative!r}."
        ) from None


class S3Source:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}"
        self._single_object = False  # the source names one object, not a folder

    def files(self) -> list[SourceFile]:
        client = s3_client()
        found: list[SourceFile] = []
        list_prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=list_prefix
            ):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    relative = _clean_member(self.description, item["Key"][len(list_prefix) :])
                    found.append(SourceFile(relative, int(item["Size"]), item["ETag"]))
            if not found and self.prefix:
                head = client.head_object(Bucket=self.bucket, Key=self.prefix)
                name = self.prefix.rsplit("/", 1)[-1]
                found.append(SourceFile(name, int(head["ContentLength"]), head["ETag"]))
                self._single_object = True
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            error = storage_error(exc, f"Source {self.description}")
            if isinstance(error, SourceError) and "does not exist" in error.message:
                raise SourceError(
                    f"Source {self.description} does not exist or holds no files."
                ) from exc
            raise error from exc
        return found

    def key(self, file: SourceFile) -> str:
        if self._single_object:
            return self.prefix
        return "/".join(part for part in (self.prefix, file.path) if part)

    def open(self, file: SourceFile) -> IO[bytes]:
        key = self.key(file)
        what = f"Source file s3://{self.bucket}/{key}"
        extra = {"IfMatch": file.etag} if file.etag else {}
        try:
            response = s3_client().get_object(Bucket=self.bucket, Key=key, **extra)
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, what) from exc
        return _StreamingBody(response["Body"], what)


class LocalFolderSource:
    """A folder (or one file) on this machine: the local store's uploads, or a ``file://``
    source. Symlinks are refused, and files are opened without following one."""

    def __init__(self, path: Path, description: str) -> None:
        self.path = path
        self.description = description

    def files(self) -> list[SourceFile]:
        path = self.path
        if path.is_symlink():
            raise SourceError(f"Source {self.description} is a symlink; symlinks are refused.")
        if path.is_file():
            return [SourceFile(path.name, path.stat().st_size)]
        if not path.is_dir():
            raise SourceError(f"Source {self.description} does not exist.")
        found = []
        for folder, dirs, names in os.walk(path, followlinks=False):
            dirs.sort()
            for name in sorted(dirs + names):
                entry = Path(folder) / name
                if entry.is_symlink():
                    raise SourceError(
                        f"Source {self.description} contains a symlink "
                        f"({entry.relative_to(path).as_posix()}); symlinks are refused."
                    )
            for name in sorted(names):
                if name.startswith(".tmp-"):
                    continue
                entry = Path(folder) / name
                relative = _clean_member(self.description, entry.relative_to(path).as_posix())
                found.append(SourceFile(relative, entry.stat().st_size))
        if not found:
            raise SourceError(f"Source {self.description} holds no files.")
        return found

    def open(self, file: SourceFile) -> IO[bytes]:
        target = self.path if self.path.is_file() else self.path / file.path
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError as exc:
            raise SourceError(f"Source file {target} disappeared during the copy.") from exc
        except OSError as exc:
            raise SourceError(f"Source file {target} cannot be read: {exc.strerror}.") from exc
        return os.fdopen(fd, "rb")


class HttpArtifactsSource:
    """Files behind an MLflow tracking server's ``mlflow-artifacts`` proxy."""

    def __init__(self, base_url: str, root: str, headers: dict[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.root = root.strip("/")
        self.headers = headers
        self.description = f"{self.base_url}/api/2.0/mlflow-artifacts/artifacts/{self.root}"

    def _list(self, relative: str) -> list[dict[str, Any]]:
        path = "/".join(part for part in (self.root, relative) if part)
        url = f"{self.base_url}/api/2.0/mlflow-artifacts/artifacts?{urlencode({'path': path})}"
        response = _http_get(url, self.headers, what=f"Listing {self.description}")
        try:
            return json.loads(response.data or b"{}").get("files", [])
        finally:
            response.release_conn()

    def files(self) -> list[SourceFile]:
        found: list[SourceFile] = []
        pending = [""]
        while pending:
            folder = pending.pop()
            for entry in self._list(folder):
                relative = _clean_member(
                    self.description,
                    "/".join(
                        part
                        for part in (folder, str(entry.get("path", "")).rsplit("/", 1)[-1])
                        if part
                    ),
                )
                if entry.get("is_dir"):
                    pending.append(relative)
                else:
                    size = entry.get("file_size")
                    found.append(SourceFile(relative, int(size) if size is not None else None))
        if not found:
            raise SourceError(f"Source {self.description} does not exist or holds no files.")
        return sorted(found, key=lambda file: file.path)

    def open(self, file: SourceFile) -> IO[bytes]:
        path = quote("/".join(part for part in (self.root, file.path) if part))
        url = f"{self.base_url}/api/2.0/mlflow-artifacts/artifacts/{path}"
        return _HttpBody(_http_get(url, self.headers, what=f"Source file {url}", stream=True), url)


class _HttpBody(IO[bytes]):
    def __init__(self, response: Any, what: str) -> None:
        self._response = response
        self._what = what

    def read(self, size: int = -1) -> bytes:
        import urllib3

        try:
            return self._response.read(None if size is None or size < 0 else size)
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"{self._what}: connection failed ({exc}).") from exc

    def close(self) -> None:
        self._response.release_conn()


def _http() -> Any:
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=False,
        headers={"User-Agent": "model-registry artifact copy"},
    )


def _http_get(url: str, headers: dict[str, str], *, what: str, stream: bool = False) -> Any:
    import urllib3

    try:
        response = _http().request(
            "GET", url, headers=headers, preload_content=not stream, redirect=False
        )
    except urllib3.exceptions.HTTPError as exc:
        raise TransientError(f"{what}: tracking server unreachable ({exc}).") from exc
    if response.status >= 500 or response.status in (408, 429):
        raise TransientError(f"{what}: tracking server answered {response.status}, will retry.")
    if response.status == 404:
        raise SourceError(f"{what}: not found on the tracking server (404).")
    if response.status >= 300:
        raise SourceError(f"{what}: tracking server answered {response.status}.")
    return response


def _tracking_headers() -> dict[str, str]:
    token = settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_TOKEN"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def _run_source(source: str) -> Source:
    run_id, sub = _runs_parts(source)
    base = settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"].rstrip("/")
    headers = _tracking_headers()
    response = _http_get(
        f"{base}/api/2.0/mlflow/runs/get?{urlencode({'run_id': run_id})}",
        headers,
        what=f"Run {run_id}",
    )
    try:
        artifact_uri = json.loads(response.data)["run"]["info"]["artifact_uri"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(
            f"Run {run_id}: the tracking server's answer has no artifact_uri."
        ) from exc
    location = artifact_uri.rstrip("/") + (f"/{sub}" if sub else "")
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        return S3Source(parsed.netloc, parsed.path)
    if parsed.scheme == "mlflow-artifacts":
        return HttpArtifactsSource(base, parsed.path, headers)
    marker = "/api/2.0/mlflow-artifacts/artifacts/"
    if parsed.scheme in ("http", "https") and location.startswith(base) and marker in location:
        return HttpArtifactsSource(base, location.split(marker, 1)[1], headers)
    raise SourceError(
        f"Run {run_id} keeps its artifacts at {location}, which the registry cannot read: "
        "supported run artifact locations are s3:// and the tracking server's "
        "mlflow-artifacts proxy."
    )


def open_source(source: str) -> Source:
    """The readable source a version names (network lookups happen here, in the task)."""
    parsed = urlparse(source)
    scheme = parsed.scheme.lower()
    try:
        if scheme == "s3":
            return S3Source(parsed.netloc, parsed.path)
        if scheme == "mlflow-artifacts":
            key = upload_path(source)
            store = get_store()
            if isinstance(store, S3Store):
                return S3Source(store.bucket, store.key(key))
            assert isinstance(store, LocalStore)
            return LocalFolderSource(store.path(key), source)
        if scheme == "file":
            return LocalFolderSource(file_source_path(source), source)
        if scheme == "runs":
            return _run_source(source)
    except RegistryError as exc:
        # Settings changed since the version was created (for example a root removed).
        raise SourceError(exc.message) from None
    raise SourceError(f"Source {source} is not supported. {supported_sources()}")


def iter_chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
