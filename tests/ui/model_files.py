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


def copied_version(actor: Any, name: str, source: Path, **fields: Any) -> ModelVersion:
    """A version of ``name`` from ``source``, copied by the registry's own copy (the suite's
    stand-in made it READY at creation; it is made pending again and copied for real)."""
    created = services.model_version_create(
        actor=actor, name=name, source=source.as_uri(), **fields
    )
    ModelVersion.objects.filter(pk=created.pk).update(
        status=ModelVersionStatus.PENDING_REGISTRATION
    )
    model_version_artifacts_copy(model_version_id=created.pk)
    copied = ModelVersion.objects.get(pk=created.pk)
    assert copied.status == ModelVersionStatus.READY, copied.status_message
    return copied
