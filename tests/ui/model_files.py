"""Model folders as MLflow writes them (its own ``Model.save``), copied by the registry's real
copy into a local-folder store, for the version page's MLmodel preview and comparison."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from registry import services
from registry.artifacts.services import model_version_artifacts_copy
from registry.models import ModelVersion, ModelVersionStatus
from tests.processes import CREDENTIALS, SOURCE_BUCKET


@pytest.fixture
def s3_sources(moto_server, monkeypatch):
    """This process reads sources from the test S3 server (emptied first), as a worker with
    its credentials would: ``s3://source/...`` (tests/processes.py). Yields a boto3 client."""
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
    _S3Clients.reset()
    yield moto_server.client()
    _S3Clients.reset()


def upload(client: Any, folder: Path, prefix: str) -> str:
    """The files of ``folder`` put under ``prefix`` in the source bucket; their ``s3://``
    address."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=SOURCE_BUCKET,
                Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                Body=path.read_bytes(),
            )
    return f"s3://{SOURCE_BUCKET}/{prefix}"


@pytest.fixture
def store(settings, tmp_path) -> Path:
    """The registry's store in a local folder, and ``<tmp>/sources`` allowed as file sources
    (as tests/registry/artifacts/conftest.py)."""
    root = tmp_path / "store"
    root.mkdir()
    (tmp_path / "sources").mkdir()
    settings.ARTIFACT_STORE_URI = root.as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": [str(tmp_path / "sources")]}
    return root


def mlflow_model(
    folder: Path,
    *,
    columns: list[tuple[str, str, bool]],
    params: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
    run_id: str = "8a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e",
    signed: bool = True,
) -> Path:
    """A model folder with an ``MLmodel`` written by MLflow itself (two flavors, a signature
    of the given input columns, a tensor output and parameters) and a small weights file."""
    folder.mkdir(parents=True, exist_ok=True)
    model = Model(artifact_path="model", run_id=run_id)
    if signed:
        model.signature = ModelSignature(
            inputs=Schema(
                [ColSpec(kind, name, required=required) for name, kind, required in columns]
            ),
            outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
            params=ParamSchema([ParamSpec(name, kind, default) for name, kind, default in params])
            if params
            else None,
        )
    model.add_flavor("python_function", loader_module="mlflow.sklearn", python_version="3.11.9")
    model.add_flavor("sklearn", sklearn_version="1.5.2", pickled_model="model.pkl")
    model.save(str(folder / "MLmodel"))
    (folder / "model.pkl").write_bytes(os.urandom(2048))
    return folder


def copied_version(actor: Any, name: str, source: Path | str, **fields: Any) -> ModelVersion:
    """A version of ``name`` from ``source`` (a folder, or an address), copied by the
    registry's own copy (the suite's stand-in made it READY at creation; it is made pending
    again and copied for real)."""
    created = services.model_version_create(
        actor=actor,
        name=name,
        source=source.as_uri() if isinstance(source, Path) else source,
        **fields,
    )
    ModelVersion.objects.filter(pk=created.pk).update(
        status=ModelVersionStatus.PENDING_REGISTRATION
    )
    model_version_artifacts_copy(model_version_id=created.pk)
    copied = ModelVersion.objects.get(pk=created.pk)
    assert copied.status == ModelVersionStatus.READY, copied.status_message
    return copied
