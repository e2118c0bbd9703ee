"""What every kind of source shares: the URI prefixes, the refusal of an invalid source (which
names what this deployment accepts), the :class:`Source` interface that the copy reads, and the
rule that the registry's own store is never a source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Protocol

from kernel.errors import RegistryError
from registry.artifacts import paths
from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import SourceError
from registry.artifacts.storage import S3Store, get_store

UPLOADS = "uploads"
UPLOADS_URI_PREFIX = "mlflow-artifacts:/uploads/"
MODELS_URI_PREFIX = "models:/"
ID_PATTERN = re.compile(r"^[\w-]{1,256}$")  # run ids and logged model ids
VERSION_PATTERN = re.compile(r"^[1-9][0-9]{0,9}$")


def supported_sources() -> str:
    """One sentence naming what this deployment accepts, for error messages."""
    kinds = [
        "s3://<bucket>/<path>",
        f"{UPLOADS_URI_PREFIX}<your username>/<path> (files you uploaded through "
        "/api/2.0/mlflow-artifacts/artifacts/uploads/<your username>/<path>)",
        "models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/<stage> "
        "(a version of this registry)",
    ]
    roots = artifact_settings().file_source_roots
    if roots:
        kinds.append(f"file:// paths under {', '.join(str(root) for root in roots)}")
    if artifact_settings().mlflow_tracking_server_url:
        kinds.append(
            "runs:/<run_id>/<path>, models:/<logged model id> and mlflow-artifacts:/<path> "
            "of the MLflow tracking server"
        )
    else:
        kinds.append(
            "runs:/, models:/<logged model id> and the tracking server's mlflow-artifacts:/ "
            "paths once MLFLOW_TRACKING_SERVER_URL names the MLflow tracking server"
        )
    return "Supported sources: " + "; ".join(kinds) + "."


def invalid_source(source: str, why: str) -> RegistryError:
    return RegistryError.invalid(
        f"Invalid model version source '{source}': {why} " + supported_sources()
    )


def overlaps_store(bucket: str, key: str) -> bool:
    """Whether ``s3://bucket/key`` lies inside the registry's store or holds it (the bucket
    root, or a folder above the store's prefix): either way it would read the store."""
    store = get_store()
    if not isinstance(store, S3Store) or bucket != store.bucket:
        return False
    inside, prefix = key.strip("/"), store.prefix
    if not prefix or not inside:
        return True
    return inside == prefix or inside.startswith(prefix + "/") or prefix.startswith(inside + "/")


STORE_REFUSAL = (
    "it lies inside the registry's own artifact store, or holds it. Register uploads as "
    f"{UPLOADS_URI_PREFIX}<path>, and copies of versions as models:/<name>/<version>."
)


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


class ListedSource:
    """A source lists its files once: a run's source is listed to see whether it holds anything
    before the copy lists it again."""

    _listed: list[SourceFile] | None = None

    def files(self) -> list[SourceFile]:
        if self._listed is None:
            self._listed = self._list_files()
        return self._listed

    def _list_files(self) -> list[SourceFile]:
        raise NotImplementedError


def clean_member(description: str, relative: str) -> str:
    try:
        return paths.clean_relative_path(relative, what="file name")
    except RegistryError:
        raise SourceError(
            f"Source {description} holds an unsafe file name: {relative!r}."
        ) from None


@dataclass
class Opened:
    """A source ready to read, with what the lookup learnt on the way: the run a logged model
    came from and the logged model a ``runs:/`` path named, for the version's ``run_id`` and
    ``model_id`` where the client sent none."""

    source: Source
    run_id: str = ""
    model_id: str = ""
