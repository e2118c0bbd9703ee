"""The copy of a source into the store, streamed and verified, and its manifest.

Per file: when source and store are on the same S3 endpoint the store copies server-side
(multipart above the chunk size) while this process reads the same object version once to
hash it (both requests are conditional on the ETag listed, so the bytes hashed are the bytes
copied); otherwise the bytes stream from the source through a hashing reader into a multipart
upload. Either way memory holds a few chunks, not the model. The bytes read are checked
against the listed size, and at the end every stored size against the bytes hashed (one
listing of the copy; a file it misses or disagrees on is asked for itself).

Files copy ``ARTIFACT_COPY_CONCURRENCY`` at a time; server-side, the largest first, so the
longest copy never runs alone at the end. A server-side copy below the chunk size is one
``CopyObject`` request (no ``HeadObject`` first: the listing gave its size and ETag).

The manifest lists path, size and sha256 per file; the digest of the whole is the sha256 of
the manifest written as ``sha256sum`` would write it (``<sha256>  <path>\\n`` per file, sorted
by path), so anyone can recompute it with standard tools.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import TransientError
from registry.artifacts.sources import S3Source, Source, SourceFile
from registry.artifacts.storage import READ_CHUNK_SIZE, ArtifactStore, S3Store


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[ManifestEntry, ...]

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def sha256sum_text(self) -> str:
        return "".join(f"{entry.sha256}  {entry.path}\n" for entry in self.files)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.sha256sum_text.encode()).hexdigest()

    def as_json(self) -> list[dict[str, object]]:
        return [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files]


class HashingReader(IO[bytes]):
    """A read-only, non-seekable stream that hashes and counts what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._hash.update(chunk)
        self.count += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._stream.close()


def _hash_all(stream: IO[bytes]) -> tuple[str, int]:
    # Only read: IO's other methods are never called (docs/decisions/0014).
    reader = HashingReader(stream)  # type: ignore[abstract]
    try:
        while reader.read(READ_CHUNK_SIZE):
            pass
    finally:
        reader.close()
    return reader.hexdigest(), reader.count


class _Copier:
    def __init__(
        self,
        source: Source,
        store: ArtifactStore,
        target: str,
        side: ThreadPoolExecutor | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.target = target
        # Server-side copies run here while the calling thread hashes the same object.
        self.side = side
        # Streamed large files buffer up to MULTIPART_CONCURRENCY parts each; one at a time
        # keeps the worker's peak memory flat however many large files a model has.
        self.large = threading.BoundedSemaphore(1)
        self.server_side = (
            artifact_settings().server_side_copy
            and isinstance(source, S3Source)
            and isinstance(store, S3Store)
        )

    def copy(self, file: SourceFile) -> ManifestEntry:
        key = f"{self.target}/{file.path}"
        if self.server_side:
            digest, count = self._server_side(file, key)
        else:
            large = file.size is None or file.size > artifact_settings().multipart_chunk_size
            if large:
                with self.large:
                    digest, count = self._streamed(file, key)
            else:
                digest, count = self._streamed(file, key)
        if file.size is not None and count != file.size:
            raise TransientError(
                f"{file.path}: read {count} bytes where the source listed {file.size} "
                "(changed during the copy?)."
            )
        # The stored size is checked for every file at the end (:func:`_check_stored`).
        return ManifestEntry(file.path, count, digest)

    def _server_side(self, file: SourceFile, key: str) -> tuple[str, int]:
        assert isinstance(self.source, S3Source)
        assert isinstance(self.store, S3Store)
        assert self.side is not None
        copied = self.side.submit(
            self.store.copy_from,
            bucket=self.source.bucket,
            key=self.source.key(file),
            etag=file.etag,
            target=key,
            size=file.size,
        )
        try:
            result = _hash_all(self.source.open(file))
        finally:
            copied.result()  # wait for it, and raise its error first if both failed
        return result

    def _streamed(self, file: SourceFile, key: str) -> tuple[str, int]:
        # Only read: IO's other methods are never called (docs/decisions/0014).
        reader = HashingReader(self.source.open(file))  # type: ignore[abstract]
        try:
            self.store.write(key, reader)
        finally:
            reader.close()
        return reader.hexdigest(), reader.count


def _largest_first(file: SourceFile) -> tuple[int, str]:
    return (-(file.size if file.size is not None else 1 << 62), file.path)


def _check_stored(store: ArtifactStore, target: str, entries: list[ManifestEntry]) -> None:
    """Every file's stored size against the bytes hashed: one listing of the copy (one request
    per 1,000 files on S3); a file the listing misses or shows with another size is asked for
    itself, and only that answer decides."""
    listed = dict(store.walk(target))
    for entry in entries:
        stored = listed.get(entry.path)
        if stored != entry.size:
            stored = store.size(f"{target}/{entry.path}")
        if stored != entry.size:
            raise TransientError(
                f"{entry.path}: the store holds {stored} bytes, expected {entry.size}."
            )


def copy_tree(
    source: Source, store: ArtifactStore, target: str, *, skip: frozenset[str] = frozenset()
) -> Manifest:
    """Copy every file of ``source`` under ``target`` in ``store``, but those whose path is in
    ``skip``; the verified manifest."""
    files = [file for file in source.files() if file.path not in skip]
    workers = min(artifact_settings().copy_concurrency, max(len(files), 1))
    with ThreadPoolExecutor(max_workers=workers) as side:
        copier = _Copier(source, store, target, side)
        if copier.server_side:
            # Largest first: the longest copy starts at once and the small files fill in
            # beside it, instead of a large file named last running alone at the end. (Not
            # when streaming: large files take turns there, and would hold up the small ones.)
            files = sorted(files, key=_largest_first)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            entries = list(pool.map(copier.copy, files))
    _check_stored(store, target, entries)
    return Manifest(tuple(sorted(entries, key=lambda entry: entry.path)))
