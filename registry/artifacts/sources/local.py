"""``file://`` sources under ``ARTIFACT_FILE_SOURCE_ROOTS``, and folders on this machine (the
local store's uploads and copies too): symlinks are refused on the way and inside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from kernel.errors import RegistryError
from registry.artifacts import paths
from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import SourceError
from registry.artifacts.sources.base import (
    STORE_REFUSAL,
    ListedSource,
    SourceFile,
    clean_member,
    invalid_source,
)
from registry.artifacts.storage import LocalStore, get_store


def file_source_path(source: str) -> Path:
    """The local path a ``file://`` source names, checked against the allowed roots: no
    traversal, no symlink anywhere on the way (the resolved path must be the path itself)."""
    roots = [Path(root) for root in artifact_settings().file_source_roots]
    if not roots:
        raise invalid_source(
            source, "file:// sources are disabled (ARTIFACT_FILE_SOURCE_ROOTS is empty)."
        )
    parsed = urlparse(source)
    if parsed.netloc not in ("", "localhost"):
        raise invalid_source(source, "file:// sources must be local paths (file:///path).")
    try:
        relative = paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise invalid_source(source, exc.message) from None
    path = Path("/" + relative)
    if os.path.realpath(path) != str(path):
        raise invalid_source(source, "the path goes through a symlink; symlinks are refused.")
    if not any(path == root or root in path.parents for root in roots):
        raise invalid_source(source, "the path is not under an allowed root.")
    store = get_store()
    if isinstance(store, LocalStore):
        # An allowed root that holds the local store must not open it: the per-user upload
        # areas and other models' copies would be read past their checks.
        store_root = Path(os.path.realpath(store.root))
        if path == store_root or store_root in path.parents or path in store_root.parents:
            raise invalid_source(source, STORE_REFUSAL)
    if path.is_dir():
        for folder, dirs, files in os.walk(path, followlinks=False):
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    raise invalid_source(source, "it contains a symlink; symlinks are refused.")
    return path


class LocalFolderSource(ListedSource):
    """A folder (or one file) on this machine: the local store's uploads, or a ``file://``
    source. Symlinks are refused, and files are opened without following one."""

    def __init__(self, path: Path, description: str) -> None:
        self.path = path
        self.description = description

    def _list_files(self) -> list[SourceFile]:
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
                relative = clean_member(self.description, entry.relative_to(path).as_posix())
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
