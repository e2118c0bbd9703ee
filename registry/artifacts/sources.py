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

from accounts.permissions import require_upload_area
from kernel.errors import RegistryError
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

UPLOADS = "uploads"
UPLOADS_URI_PREFIX = "mlflow-artifacts:/uploads/"
MODELS_URI_PREFIX = "models:/"
_ID = re.compile(r"^[\w-]{1,256}$")  # run ids and logged model ids
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")


def supported_sources() -> str:
    """One sentence naming what this deployment accepts, for error messages."""
    kinds = [
        "s3://<bucket>/<path>",
        f"{UPLOADS_URI_PREFIX}<your username>/<path> (files you uploaded through "
        "/api/2.0/mlflow-artifacts/artifacts/uploads/<your username>/<path>)",
        "models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/<stage> "
        "(a version of this registry)",
    ]
    roots = settings.ARTIFACTS["FILE_SOURCE_ROOTS"]
    if roots:
        kinds.append(f"file:// paths under {', '.join(str(root) for root in roots)}")
    if settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"]:
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


def _invalid(source: str, why: str) -> RegistryError:
    return RegistryError.invalid(
        f"Invalid model version source '{source}': {why} " + supported_sources()
    )


# --- models:/ URIs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryVersionRef:
    """``models:/<name>/...`` naming a version of this registry: exactly one of ``version``,
    ``alias`` and ``stage`` (``stage`` may be ``latest``, any case: the highest version)."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: str | None = None


def _models_rest(source: str) -> str | None:
    return source[len(MODELS_URI_PREFIX) :] if source.startswith(MODELS_URI_PREFIX) else None


def logged_model_id(source: str) -> str | None:
    """The id in ``models:/<logged model id>`` (one segment, no alias), else None."""
    rest = _models_rest(source)
    if rest is None or "/" in rest or "@" in rest:
        return None
    return rest


def registry_version_ref(source: str) -> RegistryVersionRef | None:
    """The version of this registry a ``models:/<name>/<version|stage|latest>`` or
    ``models:/<name>@<alias>`` source names; None for any other source."""
    rest = _models_rest(source)
    if rest is None:
        return None
    if "/" not in rest:
        if "@" not in rest:
            return None  # models:/<logged model id>
        name, alias = rest.rsplit("@", 1)
        if not name or not alias:
            raise _invalid(source, "expected models:/<name>@<alias>.")
        return RegistryVersionRef(name=name, alias=alias)
    name, suffix = rest.split("/", 1)
    if not name or not suffix:
        raise _invalid(source, "expected models:/<name>/<version or stage>.")
    if "/" in suffix.rstrip("/"):
        raise _invalid(
            source, "a copy takes a whole version: models:/<name>/<version> without a sub-path."
        )
    suffix = suffix.rstrip("/")
    if suffix.isdigit():
        if not _VERSION.match(suffix):
            raise _invalid(source, f"'{suffix}' is not a version number.")
        return RegistryVersionRef(name=name, version=int(suffix))
    return RegistryVersionRef(name=name, stage=suffix)


# --- Validation at create time ------------------------------------------------------------------


def is_reference(source: str) -> bool:
    """Whether a new version from ``source`` is a reference (nothing copied): under
    ``ARTIFACT_MODE=reference``, for every source but files uploaded to the registry itself (they
    are already in its store, and always copied). Copies between versions keep their source
    version's kind; the service decides those."""
    return settings.ARTIFACTS["MODE"] == "reference" and not source.startswith(UPLOADS_URI_PREFIX)


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
            raise _invalid(
                source,
                "in reference mode a source is a URI the clients can read (s3://, runs:/, "
                "models:/, mlflow-artifacts:/, https://, ...), not a local path.",
            )
        return source
    if scheme == "s3":
        _validate_s3(source, parsed.netloc, parsed.path)
    elif scheme == "mlflow-artifacts":
        if source.startswith(UPLOADS_URI_PREFIX):
            area = upload_area(upload_path(source))
            if area is None:
                raise _invalid(
                    source,
                    f"uploaded files are registered as {UPLOADS_URI_PREFIX}<your username>/<path>.",
                )
            require_upload_area(actor, area, action="register files from")
        else:
            _tracking_artifact_path(source)
    elif scheme == "file":
        file_source_path(source)
    elif scheme == "runs":
        _runs_parts(source)
    elif scheme == "models" and logged_model_id(source) is not None:
        _logged_model_parts(source)
    else:
        raise _invalid(source, "this kind of source is not supported.")
    return source


def _overlaps_store(bucket: str, key: str) -> bool:
    """Whether ``s3://bucket/key`` lies inside the registry's store or holds it (the bucket
    root, or a folder above the store's prefix): either way it would read the store."""
    store = get_store()
    if not isinstance(store, S3Store) or bucket != store.bucket:
        return False
    inside, prefix = key.strip("/"), store.prefix
    if not prefix or not inside:
        return True
    return inside == prefix or inside.startswith(prefix + "/") or prefix.startswith(inside + "/")


_STORE_REFUSAL = (
    "it lies inside the registry's own artifact store, or holds it. Register uploads as "
    f"{UPLOADS_URI_PREFIX}<path>, and copies of versions as models:/<name>/<version>."
)


def _validate_s3(source: str, bucket: str, key: str) -> None:
    if not bucket:
        raise _invalid(source, "it names no bucket.")
    if key.strip("/"):
        try:
            paths.clean_relative_path(key.lstrip("/").rstrip("/"), what="source path")
        except RegistryError as exc:
            raise _invalid(source, exc.message) from None
    if _overlaps_store(bucket, key):
        raise _invalid(source, _STORE_REFUSAL)


def upload_path(source: str) -> str:
    """The store key (``uploads/...``) that a ``mlflow-artifacts:/uploads/`` source names."""
    parsed = urlparse(source)
    if parsed.netloc or not source.startswith(UPLOADS_URI_PREFIX):
        raise _invalid(source, f"uploaded files are registered as {UPLOADS_URI_PREFIX}<path>.")
    try:
        return paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise _invalid(source, exc.message) from None


def upload_area(key: str) -> str | None:
    """The area a store key of ``uploads/`` lies in: its second segment, the username of the
    user who uploaded it (``uploads/<username>/...``). None for ``uploads`` itself and for keys
    outside it."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == UPLOADS else None


def _require_tracking_server(source: str, kind: str) -> None:
    if not settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"]:
        raise _invalid(
            source,
            f"{kind} sources are read through an MLflow tracking server, and none is configured "
            "(MLFLOW_TRACKING_SERVER_URL).",
        )


def _tracking_artifact_path(source: str) -> str:
    """The path of a tracking server's ``mlflow-artifacts:/<path>`` (not an upload)."""
    _require_tracking_server(source, "mlflow-artifacts:/")
    parsed = urlparse(source)
    if parsed.netloc:
        raise _invalid(
            source,
            "expected mlflow-artifacts:/<path> (the tracking server is the one the registry is "
            "configured with, not a host in the URI).",
        )
    try:
        return paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise _invalid(source, exc.message) from None


def _logged_model_parts(source: str) -> str:
    _require_tracking_server(source, "models:/<logged model id>")
    model_id = logged_model_id(source) or ""
    if not _ID.match(model_id):
        raise _invalid(source, "expected models:/<logged model id>, for example models:/m-1a2b.")
    return model_id


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
    store = get_store()
    if isinstance(store, LocalStore):
        # An allowed root that holds the local store must not open it: the per-user upload
        # areas and other models' copies would be read past their checks.
        store_root = Path(os.path.realpath(store.root))
        if path == store_root or store_root in path.parents or path in store_root.parents:
            raise _invalid(source, _STORE_REFUSAL)
    if path.is_dir():
        for folder, dirs, files in os.walk(path, followlinks=False):
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    raise _invalid(source, "it contains a symlink; symlinks are refused.")
    return path


def _runs_parts(source: str) -> tuple[str, str]:
    _require_tracking_server(source, "runs:/")
    match = re.match(r"^runs:/([^/]+)(?:/(.*))?$", source)
    if not match or not _ID.match(match.group(1)):
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


class _Listed:
    """A source lists its files once: a run's source is listed to see whether it holds anything
    before the copy lists it again."""

    _listed: list[SourceFile] | None = None

    def files(self) -> list[SourceFile]:
        if self._listed is None:
            self._listed = self._list_files()
        return self._listed

    def _list_files(self) -> list[SourceFile]:
        raise NotImplementedError


def _clean_member(description: str, relative: str) -> str:
    try:
        return paths.clean_relative_path(relative, what="file name")
    except RegistryError:
        raise SourceError(
            f"Source {description} holds an unsafe file name: {relative!r}."
        ) from None


class S3Source(_Listed):
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}"
        self._single_object = False  # the source names one object, not a folder

    def _list_files(self) -> list[SourceFile]:
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
        # Only read: IO's other methods are never called (docs/decisions/0014).
        return _StreamingBody(response["Body"], what)  # type: ignore[abstract]


class LocalFolderSource(_Listed):
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


class HttpArtifactsSource(_Listed):
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

    def _list_files(self) -> list[SourceFile]:
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
        # Only read: IO's other methods are never called (docs/decisions/0014).
        return _HttpBody(_http_get(url, self.headers, what=f"Source file {url}", stream=True), url)  # type: ignore[abstract]


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
    if response.status >= 300:
        said = _error_message(response)
        response.release_conn()
        if response.status == 404:
            raise SourceError(f"{what}: not found on the tracking server (404{said}).")
        raise SourceError(f"{what}: the tracking server answered {response.status}{said}.")
    return response


def _error_message(response: Any) -> str:
    """``: <message>`` of an MLflow error answer (``{"error_code", "message"}``), else ""."""
    try:
        body = json.loads(response.data[:10_000] or b"{}")
        message = str(body.get("message") or body.get("error_code") or "")
    except (ValueError, AttributeError, TypeError):
        return ""
    return f": {message[:500]}" if message else ""


def _tracking_base() -> str:
    return settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_URL"].rstrip("/")


def _tracking_headers() -> dict[str, str]:
    token = settings.ARTIFACTS["MLFLOW_TRACKING_SERVER_TOKEN"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tracking_json(path: str, *, what: str) -> dict[str, Any]:
    """GET ``path`` of the tracking server's REST API, as JSON."""
    response = _http_get(f"{_tracking_base()}{path}", _tracking_headers(), what=what)
    try:
        return json.loads(response.data or b"{}")
    except ValueError as exc:
        raise SourceError(f"{what}: the tracking server's answer is not JSON.") from exc
    finally:
        response.release_conn()


@dataclass
class Opened:
    """A source ready to read, with what the lookup learnt on the way: the run a logged model
    came from and the logged model a ``runs:/`` path named, for the version's ``run_id`` and
    ``model_id`` where the client sent none."""

    source: Source
    run_id: str = ""
    model_id: str = ""


def _location_source(location: str, *, what: str) -> Source:
    """The readable source of an artifact location the tracking server answered with."""
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        if _overlaps_store(parsed.netloc, parsed.path):
            raise SourceError(
                f"{what} keeps its artifacts at {location}, inside the registry's own store: "
                "refused (the store is never a source)."
            )
        return S3Source(parsed.netloc, parsed.path)
    base, headers = _tracking_base(), _tracking_headers()
    if parsed.scheme == "mlflow-artifacts":
        # mlflow-artifacts://host:port/<path> names the same proxy as mlflow-artifacts:/<path>;
        # the registry only ever asks the tracking server it is configured with.
        return HttpArtifactsSource(base, parsed.path, headers)
    marker = "/api/2.0/mlflow-artifacts/artifacts/"
    if parsed.scheme in ("http", "https") and location.startswith(base) and marker in location:
        return HttpArtifactsSource(base, location.split(marker, 1)[1], headers)
    raise SourceError(
        f"{what} keeps its artifacts at {location}, which the registry cannot read: "
        "supported artifact locations are s3:// and the tracking server's mlflow-artifacts "
        "proxy."
    )


def _logged_model_source(model_id: str) -> Opened:
    what = f"Logged model {model_id}"
    body = _tracking_json(f"/api/2.0/mlflow/logged-models/{quote(model_id, safe='')}", what=what)
    try:
        info = body["model"]["info"]
        location = info["artifact_uri"]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{what}: the tracking server's answer has no artifact_uri.") from exc
    status = info.get("status", "")
    if status == "LOGGED_MODEL_PENDING":
        # Its files are still being uploaded (log_model finishes them before it registers).
        raise TransientError(f"{what} is still LOGGED_MODEL_PENDING on the tracking server.")
    if status == "LOGGED_MODEL_UPLOAD_FAILED":
        raise SourceError(f"{what}: its upload failed (LOGGED_MODEL_UPLOAD_FAILED).")
    return Opened(
        _location_source(location, what=what),
        run_id=info.get("source_run_id") or "",
        model_id=model_id,
    )


def _has_files(source: Source) -> bool:
    try:
        return bool(source.files())
    except SourceError:
        return False


def _run_logged_model(run: dict[str, Any], run_id: str, name: str) -> str | None:
    """The id of the model logged in the run under ``name`` (MLflow 3's ``log_model(...,
    name=...)``): the run's model outputs, each looked up for its name."""
    outputs = (run.get("outputs") or {}).get("model_outputs") or []
    for output in outputs:
        model_id = str(output.get("model_id") or "")
        if not _ID.match(model_id):
            continue
        body = _tracking_json(
            f"/api/2.0/mlflow/logged-models/{quote(model_id, safe='')}",
            what=f"Logged model {model_id} of run {run_id}",
        )
        if ((body.get("model") or {}).get("info") or {}).get("name") == name:
            return model_id
    return None


def _run_source(source: str) -> Opened:
    run_id, sub = _runs_parts(source)
    what = f"Run {run_id}"
    body = _tracking_json(f"/api/2.0/mlflow/runs/get?{urlencode({'run_id': run_id})}", what=what)
    try:
        run = body["run"]
        artifact_uri = run["info"]["artifact_uri"]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{what}: the tracking server's answer has no artifact_uri.") from exc
    location = artifact_uri.rstrip("/") + (f"/{sub}" if sub else "")
    primary = _location_source(location, what=what)
    if sub and not _has_files(primary):
        model_id = _run_logged_model(run, run_id, sub)
        if model_id:
            return _logged_model_source(model_id)
        raise SourceError(f"{what} has no artifacts at '{sub}' and logged no model named '{sub}'.")
    return Opened(primary, run_id=run_id)


def store_folder_source(folder: str) -> Source:
    """A folder of the registry's own store (a managed copy), read by the copy of one version
    into another. Only the task builds this; no user-given source reaches the store."""
    store = get_store()
    if isinstance(store, S3Store):
        return S3Source(store.bucket, store.key(folder))
    assert isinstance(store, LocalStore)
    return LocalFolderSource(store.path(folder), f"the managed copy {folder}")


def open_source(source: str) -> Opened:
    """The readable source a version names (network lookups happen here, in the task)."""
    parsed = urlparse(source)
    scheme = parsed.scheme.lower()
    try:
        if scheme == "s3":
            if _overlaps_store(parsed.netloc, parsed.path):
                raise SourceError(f"Source {source}: {_STORE_REFUSAL}")
            return Opened(S3Source(parsed.netloc, parsed.path))
        if scheme == "mlflow-artifacts":
            if not source.startswith(UPLOADS_URI_PREFIX):
                path = _tracking_artifact_path(source)
                return Opened(HttpArtifactsSource(_tracking_base(), path, _tracking_headers()))
            key = upload_path(source)
            store = get_store()
            if isinstance(store, S3Store):
                return Opened(S3Source(store.bucket, store.key(key)))
            assert isinstance(store, LocalStore)
            return Opened(LocalFolderSource(store.path(key), source))
        if scheme == "file":
            return Opened(LocalFolderSource(file_source_path(source), source))
        if scheme == "runs":
            return _run_source(source)
        if scheme == "models":
            if logged_model_id(source) is not None:
                return _logged_model_source(_logged_model_parts(source))
            # models:/<name>/<version> copies read the source version's managed copy
            # (:func:`store_folder_source`); reaching here means that version is gone.
            raise SourceError(
                f"Source {source}: the version it copies was deleted before its files were copied."
            )
    except RegistryError as exc:
        # Settings changed since the version was created (for example a root removed).
        raise SourceError(exc.message) from None
    raise SourceError(f"Source {source} is not supported. {supported_sources()}")


def iter_chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
