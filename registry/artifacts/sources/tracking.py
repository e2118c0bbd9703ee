"""Sources read through the MLflow tracking server (``MLFLOW_TRACKING_SERVER_URL``):
``runs:/<run_id>/<path>``, ``models:/<logged model id>`` and its ``mlflow-artifacts:/<path>``
proxy. The checks of their shape run at create time without a call; the lookups run in the
copy task, and every location the server answers is checked against the store."""

from __future__ import annotations

import json
import re
from typing import IO, Any
from urllib.parse import quote, urlencode, urlparse

from kernel.errors import RegistryError
from registry.artifacts import paths
from registry.artifacts.conf import artifact_settings
from registry.artifacts.errors import SourceError, TransientError
from registry.artifacts.sources.base import (
    ID_PATTERN,
    ListedSource,
    Opened,
    Source,
    SourceFile,
    clean_member,
    invalid_source,
    overlaps_store,
)
from registry.artifacts.sources.models_uri import logged_model_id
from registry.artifacts.sources.s3 import S3Source


def _require_tracking_server(source: str, kind: str) -> None:
    if not artifact_settings().mlflow_tracking_server_url:
        raise invalid_source(
            source,
            f"{kind} sources are read through an MLflow tracking server, and none is configured "
            "(MLFLOW_TRACKING_SERVER_URL).",
        )


def tracking_artifact_path(source: str) -> str:
    """The path of a tracking server's ``mlflow-artifacts:/<path>`` (not an upload)."""
    _require_tracking_server(source, "mlflow-artifacts:/")
    parsed = urlparse(source)
    if parsed.netloc:
        raise invalid_source(
            source,
            "expected mlflow-artifacts:/<path> (the tracking server is the one the registry is "
            "configured with, not a host in the URI).",
        )
    try:
        return paths.clean_relative_path(parsed.path.lstrip("/"), what="source path")
    except RegistryError as exc:
        raise invalid_source(source, exc.message) from None


def logged_model_parts(source: str) -> str:
    _require_tracking_server(source, "models:/<logged model id>")
    model_id = logged_model_id(source) or ""
    if not ID_PATTERN.match(model_id):
        raise invalid_source(
            source, "expected models:/<logged model id>, for example models:/m-1a2b."
        )
    return model_id


def runs_parts(source: str) -> tuple[str, str]:
    _require_tracking_server(source, "runs:/")
    match = re.match(r"^runs:/([^/]+)(?:/(.*))?$", source)
    if not match or not ID_PATTERN.match(match.group(1)):
        raise invalid_source(source, "expected runs:/<run_id>/<path>.")
    try:
        sub = paths.clean_relative_path(match.group(2) or "", what="source path", allow_empty=True)
    except RegistryError as exc:
        raise invalid_source(source, exc.message) from None
    return match.group(1), sub


class HttpArtifactsSource(ListedSource):
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
                relative = clean_member(
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
        body = _http_get(url, self.headers, what=f"Source file {url}", stream=True)
        # Only read: IO's other methods are never called (docs/decisions/0014).
        return _HttpBody(body, url)  # type: ignore[abstract]


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


def tracking_base() -> str:
    return artifact_settings().mlflow_tracking_server_url.rstrip("/")


def tracking_headers() -> dict[str, str]:
    token = artifact_settings().mlflow_tracking_server_token
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tracking_json(path: str, *, what: str) -> dict[str, Any]:
    """GET ``path`` of the tracking server's REST API, as JSON."""
    response = _http_get(f"{tracking_base()}{path}", tracking_headers(), what=what)
    try:
        return json.loads(response.data or b"{}")
    except ValueError as exc:
        raise SourceError(f"{what}: the tracking server's answer is not JSON.") from exc
    finally:
        response.release_conn()


def _location_source(location: str, *, what: str) -> Source:
    """The readable source of an artifact location the tracking server answered with."""
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        if overlaps_store(parsed.netloc, parsed.path):
            raise SourceError(
                f"{what} keeps its artifacts at {location}, inside the registry's own store: "
                "refused (the store is never a source)."
            )
        return S3Source(parsed.netloc, parsed.path)
    base, headers = tracking_base(), tracking_headers()
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


def logged_model_source(model_id: str) -> Opened:
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
        if not ID_PATTERN.match(model_id):
            continue
        body = _tracking_json(
            f"/api/2.0/mlflow/logged-models/{quote(model_id, safe='')}",
            what=f"Logged model {model_id} of run {run_id}",
        )
        if ((body.get("model") or {}).get("info") or {}).get("name") == name:
            return model_id
    return None


def run_source(source: str) -> Opened:
    run_id, sub = runs_parts(source)
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
            return logged_model_source(model_id)
        raise SourceError(f"{what} has no artifacts at '{sub}' and logged no model named '{sub}'.")
    return Opened(primary, run_id=run_id)
