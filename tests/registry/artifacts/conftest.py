"""The real things for artifact tests (docs/architecture.md, "Decisions"): an S3-compatible server
(moto) in its own process, a Celery worker on Redis, and the registry's web server in its own
process (``tests/processes.py``; the fixtures ``moto_server`` and ``registry_stack`` are in
``tests/conftest.py``, shared with the fault drills).

The web server and the worker get the storage credentials in their environment; the test
process, where the ``mlflow`` client runs, does not: it reaches the files only through the
registry's API with a token.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import (  # noqa: F401 - re-exported for the tests of this folder
    BROKER_URL,
    CREDENTIALS,
    SOURCE_BUCKET,
    STORE_BUCKET,
    MotoServer,
    RegistryStack,
    wait_for,
)

MIB = 1024 * 1024


@pytest.fixture
def store(settings, tmp_path) -> Path:
    """The registry's store in a local folder, and ``<tmp>/sources`` allowed as file sources."""
    root = tmp_path / "store"
    root.mkdir()
    (tmp_path / "sources").mkdir()
    settings.ARTIFACT_STORE_URI = root.as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": [str(tmp_path / "sources")]}
    return root


@pytest.fixture
def s3(moto_server, monkeypatch, settings):
    """This process talks to the moto server (emptied first) with the test credentials, and
    copies with small parts. Yields a boto3 client of its own for the test's checks."""
    from registry.artifacts.storage import _S3Clients

    moto_server.reset()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    settings.ARTIFACTS = {
        **settings.ARTIFACTS,
        "SERVER_SIDE_COPY": True,
        "MULTIPART_CHUNK_SIZE": 5 * MIB,
        "MULTIPART_CONCURRENCY": 2,
        "COPY_CONCURRENCY": 3,
    }
    _S3Clients.reset()
    yield moto_server.client()
    _S3Clients.reset()


@pytest.fixture
def client_env(monkeypatch, registry_stack, user):
    """The ``mlflow`` client's environment: the registry URL and a token, nothing else.

    No AWS variable, no AWS config or credentials file: the client can only fetch artifacts
    through the registry's API.
    """
    from accounts.services import api_token_create

    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_stack.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_stack.url)
    monkeypatch.setenv(
        "MLFLOW_TRACKING_TOKEN", api_token_create(actor=None, user=user, name="e2e").secret
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(registry_stack.url)
    mlflow.set_registry_uri(registry_stack.url)
    return registry_stack
