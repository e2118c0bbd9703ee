"""The registry an import reads: plain REST calls of the MLflow registry protocol, paged with
page tokens, with the credentials an ``mlflow`` client would use (docs/migrating.md)."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import urllib3

MODELS_PAGE = 100
VERSIONS_PAGE = 200
# Server errors and throttling are tried again this many times, backing off.
ATTEMPTS = 4


class SourceReadError(Exception):
    """The source refused or failed a read; the message says which and why."""


@dataclass(frozen=True)
class SourceVersion:
    name: str
    version: int
    description: str
    source: str
    run_id: str
    run_link: str
    status: str
    current_stage: str
    tags: dict[str, str]
    user_id: str
    created_at: datetime | None
    updated_at: datetime | None
    model_id: str


@dataclass(frozen=True)
class SourceModel:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]  # alias -> version
    user_id: str
    created_at: datetime | None
    updated_at: datetime | None
    versions: list[SourceVersion] = field(default_factory=list)


def from_milliseconds(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    milliseconds = int(value)
    return datetime.fromtimestamp(milliseconds // 1000, tz=UTC) + timedelta(
        milliseconds=milliseconds % 1000
    )


def _tags(items: Any) -> dict[str, str]:
    return {str(tag["key"]): str(tag.get("value") or "") for tag in items or []}


def _version(data: dict[str, Any]) -> SourceVersion:
    return SourceVersion(
        name=str(data["name"]),
        version=int(data["version"]),
        description=str(data.get("description") or ""),
        source=str(data.get("source") or ""),
        run_id=str(data.get("run_id") or ""),
        run_link=str(data.get("run_link") or ""),
        status=str(data.get("status") or "READY"),
        current_stage=str(data.get("current_stage") or "None"),
        tags=_tags(data.get("tags")),
        user_id=str(data.get("user_id") or ""),
        created_at=from_milliseconds(data.get("creation_timestamp")),
        updated_at=from_milliseconds(data.get("last_updated_timestamp")),
        model_id=str(data.get("model_id") or ""),
    )


def _model(data: dict[str, Any]) -> SourceModel:
    return SourceModel(
        name=str(data["name"]),
        description=str(data.get("description") or ""),
        tags=_tags(data.get("tags")),
        aliases={str(a["alias"]): int(a["version"]) for a in data.get("aliases") or []},
        user_id=str(data.get("user_id") or ""),
        created_at=from_milliseconds(data.get("creation_timestamp")),
        updated_at=from_milliseconds(data.get("last_updated_timestamp")),
    )


def credentials_from_environment(
    url: str | None, token: str | None, username: str | None, password: str | None
) -> tuple[str, dict[str, str]]:
    """The source's base URL and its auth header: the options first (``token``, else
    ``username`` and ``password``), then the variables, in the order an ``mlflow`` client
    reads them (``MLFLOW_TRACKING_USERNAME`` and ``_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``),
    then ``DATABRICKS_TOKEN``. Without a URL, ``DATABRICKS_HOST``."""
    url = url or os.environ.get("DATABRICKS_HOST") or ""
    if not url:
        raise SourceReadError("No source: pass --from URL (or set DATABRICKS_HOST).")
    if "://" not in url:
        url = f"https://{url}"
    if token or username:
        return credentials(url, token or "", username or "", password or "")
    environ = os.environ
    if environ.get("MLFLOW_TRACKING_USERNAME"):
        return credentials(
            url,
            "",
            environ["MLFLOW_TRACKING_USERNAME"],
            environ.get("MLFLOW_TRACKING_PASSWORD", ""),
        )
    token = environ.get("MLFLOW_TRACKING_TOKEN") or environ.get("DATABRICKS_TOKEN") or ""
    return credentials(url, token, "", "")


def credentials(url: str, token: str, username: str, password: str) -> tuple[str, dict[str, str]]:
    """The base URL and the auth header of exactly these credentials (no variable read: a
    run started from the API must not send the worker's own credentials anywhere)."""
    headers: dict[str, str] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif username:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    return url.rstrip("/"), headers


class RegistrySource:
    """Reads one registry through ``/api/2.0/mlflow/...``. Thread-safe (urllib3's pool)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self._headers = {"User-Agent": "model-registry import", **headers}
        self._http = urllib3.PoolManager(
            maxsize=16, timeout=urllib3.Timeout(connect=10, read=120), retries=False
        )

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
        address = f"{self.url}/api/2.0/mlflow/{path}?{query}"
        for attempt in range(ATTEMPTS):
            try:
                response = self._http.request("GET", address, headers=self._headers)
            except urllib3.exceptions.HTTPError as exc:
                if attempt + 1 == ATTEMPTS:
                    raise SourceReadError(f"{path}: {self.url} unreachable ({exc}).") from exc
            else:
                if response.status < 300:
                    try:
                        return dict(json.loads(response.data or b"{}"))
                    except ValueError as exc:
                        raise SourceReadError(f"{path}: the answer is not JSON.") from exc
                if response.status < 500 and response.status not in (408, 429):
                    raise SourceReadError(f"{path}: {self._refusal(response)}")
                if attempt + 1 == ATTEMPTS:
                    raise SourceReadError(f"{path}: {self._refusal(response)}")
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _refusal(response: Any) -> str:
        try:
            body = json.loads(response.data[:10_000] or b"{}")
            said = str(body.get("message") or body.get("error_code") or "")
        except (ValueError, AttributeError, TypeError):
            said = ""
        return f"the source answered {response.status}" + (f": {said[:500]}" if said else ".")

    def check(self) -> None:
        """One cheap call, so that a wrong URL or credentials fail before anything is done."""
        self._get("registered-models/search", {"max_results": 1})

    def model_names(self, patterns: list[str]) -> list[str]:
        """The names of the models to import: every one, or those named (a name with ``%`` is
        a LIKE pattern on the source)."""
        names: list[str] = []
        searches = [p for p in patterns if "%" in p] if patterns else [""]
        names.extend(p for p in patterns if "%" not in p)
        for pattern in searches:
            escaped = pattern.replace("'", "\\'")
            token = None
            while True:
                page = self._get(
                    "registered-models/search",
                    {
                        "max_results": MODELS_PAGE,
                        "page_token": token,
                        "filter": f"name LIKE '{escaped}'" if pattern else None,
                    },
                )
                names.extend(str(m["name"]) for m in page.get("registered_models") or [])
                token = page.get("next_page_token")
                if not token:
                    break
        return list(dict.fromkeys(names))

    def model(self, name: str) -> SourceModel:
        data = self._get("registered-models/get", {"name": name})["registered_model"]
        return _model(data)

    def version_numbers(self, name: str) -> list[int]:
        """Every version of the model the source still has, lowest first."""
        escaped = name.replace("'", "\\'")
        numbers: list[int] = []
        token = None
        while True:
            page = self._get(
                "model-versions/search",
                {"filter": f"name='{escaped}'", "max_results": VERSIONS_PAGE, "page_token": token},
            )
            numbers.extend(int(v["version"]) for v in page.get("model_versions") or [])
            token = page.get("next_page_token")
            if not token:
                break
        return sorted(set(numbers))

    def version(self, name: str, number: int) -> SourceVersion:
        """One version read whole: a search may leave out tags (Databricks does)."""
        data = self._get("model-versions/get", {"name": name, "version": str(number)})
        return _version(data["model_version"])
