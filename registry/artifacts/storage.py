"""The registry's artifact store behind one interface, with two backends (docs/architecture.md,
"Artifacts").

``ARTIFACT_STORE_URI`` picks the backend: ``s3://bucket/prefix`` (any S3-compatible server;
boto3 reads the endpoint, region and credentials from the standard AWS variables such as
``AWS_ENDPOINT_URL_S3``, so MinIO, Ceph, R2 and AWS all work) or ``file:///folder`` (the
embedded default). Keys are ``/``-separated and relative to the store's root; callers check
user-given paths with :mod:`registry.artifacts.paths` before they become keys.

Everything streams: reads yield chunks, writes take a file-like object and upload it in parts,
so memory stays flat whatever the size of a model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

from django.conf import settings

from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import (
    NotFoundError,
    PathConflictError,
    SourceError,
    TransientError,
)

READ_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One entry of a folder listing: a base name, and the size of files."""

    name: str
    is_dir: bool
    size: int | None = None


class ArtifactStore(Protocol):
    def size(self, key: str) -> int | None:
        """The size of the file at ``key``, or None when there is none."""

    def list_dir(self, key: str) -> list[Entry]:
        """The files and folders directly under ``key`` (empty when it is not a folder)."""

    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        """Every file under ``key``, recursively: (path relative to ``key``, size)."""

    def open(self, key: str) -> IO[bytes]:
        """A stream of the file's bytes; raises :class:`NotFoundError`."""

    def write(self, key: str, stream: IO[bytes]) -> None:
        """Stream ``stream`` to ``key`` (multipart for large files), replacing what is there."""

    def delete_prefix(self, key: str) -> None:
        """Delete the file at ``key`` and every file under it."""

    def delete_older_than(self, key: str, cutoff: datetime, keep: Callable[[str], bool]) -> int:
        """Delete every file under ``key`` last written before ``cutoff``, except those whose
        path relative to ``key`` ``keep`` answers true for; with them what unfinished writes
        left (temporary files, multipart uploads) that is as old. Returns the files deleted."""


# --- S3-compatible ------------------------------------------------------------------------------

_RETRYABLE_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "PreconditionFailed",  # the source changed while we copied it: start again
    "NoSuchUpload",  # our multipart upload was aborted under us (another attempt began)
}
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


def storage_error(exc: Exception, what: str) -> Exception:
    """Classify a boto3/botocore exception: :class:`TransientError` (retry) or
    :class:`SourceError` (missing or unreadable for good)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _MISSING_CODES:
            return SourceError(f"{what} does not exist ({code}).")
        # 412 by status too: a HeadObject's answer has no body, so no "PreconditionFailed".
        if code in _RETRYABLE_CODES or status >= 500 or status in (408, 412, 429):
            return TransientError(f"{what}: storage answered {code or status}, will retry.")
        return SourceError(f"{what} cannot be read: {code or status} {error.get('Message', '')}")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what}: storage unreachable ({type(exc).__name__}: {exc}).")
    return exc


def s3_client() -> Any:
    """A boto3 S3 client for this process (thread-safe, created once per process)."""
    return _S3Clients.get()


class _S3Clients:
    _lock = threading.Lock()
    _clients: dict[int, Any] = {}

    @classmethod
    def get(cls) -> Any:
        pid = os.getpid()  # never share a client (and its connection pool) across a fork
        client = cls._clients.get(pid)
        if client is None:
            with cls._lock:
                client = cls._clients.get(pid)
                if client is None:
                    import boto3
                    from botocore.config import Config

                    client = boto3.session.Session().client(
                        "s3",
                        config=Config(
                            retries={"mode": "standard", "max_attempts": 3},
                            connect_timeout=10,
                            read_timeout=120,
                            max_pool_connections=32,
                            # Path-style works on every S3-compatible server; AWS accepts it.
                            s3={"addressing_style": artifact_settings().s3_addressing_style},
                            # Only the checksums every server supports: some S3-compatible
                            # servers refuse the newer default CRC trailers.
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required",
                        ),
                    )
                    cls._clients = {pid: client}
        return client

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._clients = {}


def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    chunk = artifact_settings().multipart_chunk_size
    concurrency = artifact_settings().multipart_concurrency
    config = TransferConfig(
        multipart_threshold=chunk, multipart_chunksize=chunk, max_concurrency=concurrency
    )
    # Bounds what a streamed (non-seekable) upload buffers: at most this many parts in memory.
    config.max_in_memory_upload_chunks = concurrency
    return config


class ClassifiedStreamingBody(IO[bytes]):
    """A botocore StreamingBody whose read errors are classified."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self._what) from exc

    def close(self) -> None:
        self._body.close()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(READ_CHUNK_SIZE):
            yield chunk


class _KnownObject:
    """An s3transfer subscriber giving a copy the size and ETag the source listing gave."""

    def __init__(self, size: int, etag: str) -> None:
        self._size = size
        self._etag = etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)
        future.meta.provide_object_etag(self._etag)

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        pass

    def on_done(self, future: Any, **kwargs: Any) -> None:
        pass


class S3Store:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"

    def key(self, key: str) -> str:
        return "/".join(part for part in (self.prefix, key.strip("/")) if part)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = s3_client().head_object(Bucket=self.bucket, Key=self.key(key))
        except ClientError as exc:
            error = storage_error(exc, self.uri(key))
            if isinstance(error, SourceError):
                return None
            raise error from exc
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self.uri(key)) from exc
        return int(head["ContentLength"])

    def _pages(self, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = s3_client().get_paginator("list_objects_v2")
        prefix = self.key(key)
        prefix = f"{prefix}/" if prefix else ""
        try:
            yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self.uri(key)) from exc

    def list_dir(self, key: str) -> list[Entry]:
        entries: list[Entry] = []
        for page in self._pages(key, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                entries.append(Entry(common["Prefix"].rstrip("/").rsplit("/", 1)[-1], True))
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if name:
                    entries.append(Entry(name, False, int(item["Size"])))
        return sorted(entries, key=lambda entry: entry.name)

    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        base = len(self.key(key)) + (1 if self.key(key) else 0)
        for page in self._pages(key):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    yield item["Key"][base:], int(item["Size"])

    def open(self, key: str) -> IO[bytes]:
        try:
            response = s3_client().get_object(Bucket=self.bucket, Key=self.key(key))
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            error = storage_error(exc, self.uri(key))
            if isinstance(error, SourceError):
                raise NotFoundError(error.message) from exc
            raise error from exc
        # Only read: IO's other methods are never called (docs/decisions/0014).
        return ClassifiedStreamingBody(response["Body"], self.uri(key))  # type: ignore[abstract]

    def write(self, key: str, stream: IO[bytes]) -> None:
        try:
            s3_client().upload_fileobj(stream, self.bucket, self.key(key), Config=transfer_config())
        except (SourceError, TransientError):
            raise
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self.uri(key)) from exc

    def copy_from(
        self, *, bucket: str, key: str, etag: str, target: str, size: int | None = None
    ) -> None:
        """Server-side copy of ``s3://bucket/key`` (that exact ``etag``) to ``target``: the
        bytes never pass through this process. Multipart above the chunk size.

        With the ``size`` and ``etag`` a listing gave, an object below the chunk size is copied
        in one request (``CopyObject``, conditional on the ETag, copies the metadata itself)
        without the ``HeadObject`` boto3 would otherwise send first; larger objects keep that
        request, which carries the metadata the multipart upload is created with."""
        from boto3.s3.transfer import create_transfer_manager

        config = transfer_config()
        # s3transfer calls on_queued, on_progress and on_done on any object (the stubs ask for
        # its BaseSubscriber class).
        subscribers: list[Any] = []
        if etag and size is not None and size < config.multipart_threshold:
            subscribers.append(_KnownObject(size, etag))
        try:
            with create_transfer_manager(s3_client(), config) as manager:
                manager.copy(
                    copy_source={"Bucket": bucket, "Key": key},
                    bucket=self.bucket,
                    key=self.key(target),
                    extra_args={"CopySourceIfMatch": etag} if etag else None,
                    subscribers=subscribers,
                ).result()
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, f"s3://{bucket}/{key}") from exc

    def delete_prefix(self, key: str) -> None:
        """Delete the object at ``key`` and every object under ``key/``, and abort the
        multipart uploads left there by an attempt that died mid-transfer (a killed worker): S3
        keeps their parts, and bills them, until they are aborted; they are not objects, so no
        listing shows them."""
        if not key.strip("/"):
            raise ValueError("Refusing to delete the whole store.")
        client = s3_client()
        # The object at the key itself (a single file; S3 answers deletes of missing keys
        # with success), then everything under it as a folder.
        batch: list[dict[str, str]] = [{"Key": self.key(key)}]
        try:
            self._abort_uploads(key)
            for page in self._pages(key):
                for item in page.get("Contents", []):
                    batch.append({"Key": item["Key"]})
                    if len(batch) == 1000:
                        client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
                        batch = []
            if batch:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
        except (SourceError, TransientError):
            raise
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self.uri(key)) from exc

    def delete_older_than(self, key: str, cutoff: datetime, keep: Callable[[str], bool]) -> int:
        client = s3_client()
        base = len(self.key(key)) + 1
        batch: list[dict[str, str]] = []
        deleted = 0
        try:
            self._abort_uploads(key, initiated_before=cutoff)
            for page in self._pages(key):
                for item in page.get("Contents", []):
                    if item["LastModified"] >= cutoff or keep(item["Key"][base:]):
                        continue
                    batch.append({"Key": item["Key"]})
                    if len(batch) == 1000:
                        client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
                        deleted += len(batch)
                        batch = []
            if batch:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
                deleted += len(batch)
        except (SourceError, TransientError):
            raise
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, self.uri(key)) from exc
        return deleted

    def _abort_uploads(self, key: str, *, initiated_before: datetime | None = None) -> None:
        """Abort the multipart uploads to ``key`` or under it (begun before a time, if given)."""
        from botocore.exceptions import ClientError

        client = s3_client()
        target = self.key(key)
        try:
            pages = client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=target
            )
            uploads = [
                upload
                for page in pages
                for upload in page.get("Uploads", [])
                if (not target or upload["Key"] == target or upload["Key"].startswith(target + "/"))
                and (initiated_before is None or upload["Initiated"] < initiated_before)
            ]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NotImplemented", "501"}:
                return  # a server without the listing: nothing we could abort
            raise
        for upload in uploads:
            try:
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise  # NoSuchUpload: completed or aborted meanwhile


# --- Local folder -------------------------------------------------------------------------------


class LocalStore:
    """Files in a folder. Written files are made read-only; symlinks are never followed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def path(self, key: str) -> Path:
        return self.root / key.strip("/") if key.strip("/") else self.root

    def size(self, key: str) -> int | None:
        path = self.path(key)
        if path.is_symlink() or not path.is_file():
            return None
        return path.stat().st_size

    def list_dir(self, key: str) -> list[Entry]:
        path = self.path(key)
        if path.is_symlink() or not path.is_dir():
            return []
        entries = []
        with os.scandir(path) as scan:
            for item in scan:
                if item.is_symlink() or item.name.startswith(".tmp-"):
                    continue
                if item.is_dir(follow_symlinks=False):
                    entries.append(Entry(item.name, True))
                elif item.is_file(follow_symlinks=False):
                    entries.append(Entry(item.name, False, item.stat().st_size))
        return sorted(entries, key=lambda entry: entry.name)

    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        base = self.path(key)
        if base.is_symlink() or not base.is_dir():
            return
        for folder, dirs, files in os.walk(base, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if path.is_symlink() or name.startswith(".tmp-"):
                    continue
                yield path.relative_to(base).as_posix(), path.stat().st_size

    def open(self, key: str) -> IO[bytes]:
        try:
            fd = os.open(self.path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, OSError) as exc:
            raise NotFoundError(f"{key} does not exist.") from exc
        return os.fdopen(fd, "rb")

    def write(self, key: str, stream: IO[bytes]) -> None:
        path = self.path(key)
        temporary = path.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            with self._create(temporary) as out:
                shutil.copyfileobj(stream, out, READ_CHUNK_SIZE)
            temporary.chmod(0o444)
            os.replace(temporary, path)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise PathConflictError(
                f"{key} is a folder, or one of the folders on its way is a file."
            ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                temporary.unlink()

    @staticmethod
    def _create(path: Path) -> IO[bytes]:
        """A new file at ``path``, its folders made first. The expiry of uploads removes old
        empty folders, and may remove one between the ``mkdir`` and the file: then once more."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return path.open("xb")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("xb")

    def delete_older_than(self, key: str, cutoff: datetime, keep: Callable[[str], bool]) -> int:
        base = self.path(key)
        if base.is_symlink() or not base.is_dir():
            return 0
        limit = cutoff.timestamp()
        folders: list[tuple[str, float]] = []
        deleted = 0
        for folder, _dirs, files in os.walk(base, followlinks=False):
            # A folder's time before its files go (deleting them makes it new): only a folder
            # nobody wrote to since the cutoff is removed once empty; a newer one may be about
            # to get a file.
            folders.append((folder, os.lstat(folder).st_mtime))
            for name in files:
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    if path.lstat().st_mtime < limit and not keep(
                        path.relative_to(base).as_posix()
                    ):
                        path.unlink()
                        deleted += 1
        # Deepest first, and only empty ones (rmdir refuses the others).
        for folder, modified in sorted(folders[1:], key=lambda item: -item[0].count(os.sep)):
            if modified < limit:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        return deleted

    def delete_prefix(self, key: str) -> None:
        path = self.path(key)
        if path == self.root:
            raise ValueError("Refusing to delete the whole store.")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def store_from_uri(uri: str) -> ArtifactStore:
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return S3Store(parsed.netloc, parsed.path)
    return LocalStore(Path(unquote(parsed.path)))


def get_store() -> ArtifactStore:
    """The store ``ARTIFACT_STORE_URI`` names (cheap: clients are cached per process)."""
    return store_from_uri(settings.ARTIFACT_STORE_URI)
