"""The MLmodel file kept with a copy (docs/decisions/0020-mlmodel-preview.md): read back from
the S3 store (the moto server) at most one byte past the limit, cut at the limit, and parsed
safely whatever it holds."""

from __future__ import annotations

import pytest

from registry.artifacts import mlmodel
from registry.artifacts.copy import copy_tree
from registry.artifacts.sources import S3Source
from registry.artifacts.storage import S3Store, s3_client
from tests.registry.artifacts.conftest import SOURCE_BUCKET, STORE_BUCKET

pytestmark = pytest.mark.real_artifact_copy

SIGNED = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pytorch
    python_version: 3.11.9
  pytorch:
    pytorch_version: 2.5.1
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 224, 224]}}]'
  outputs: '[{"type": "array", "items": {"type": "double"}, "name": "scores"}]'
  params: '[{"name": "top_k", "type": "long", "default": 5, "shape": null}]'
"""


def _copied(s3, files: dict[str, bytes]) -> tuple[S3Store, list[str]]:
    for path, body in files.items():
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"m/{path}", Body=body)
    store = S3Store(STORE_BUCKET, "store")
    manifest = copy_tree(S3Source(SOURCE_BUCKET, "m"), store, "v/1")
    return store, [entry.path for entry in manifest.files]


def test_kept_from_the_copy_on_s3_with_one_read(s3):
    store, paths = _copied(s3, {"MLmodel": SIGNED.encode(), "data/model.pth": b"0" * 4096})
    calls: list[str] = []
    s3_client().meta.events.register(
        "before-call.s3.*", lambda model, **kwargs: calls.append(model.name)
    )

    text, truncated = mlmodel.capture(store, "v/1", paths)

    assert (text, truncated) == (SIGNED, False)
    assert calls == ["GetObject"]
    preview = mlmodel.parse(text)
    assert preview is not None
    assert [flavor.name for flavor in preview.flavors] == ["python_function", "pytorch"]
    assert [(row.name, row.type) for row in preview.inputs] == [
        ("(unnamed 1)", "tensor float32 [-1, 3, 224, 224]")
    ]
    assert [(row.name, row.type) for row in preview.outputs] == [("scores", "array<double>")]
    assert [(row.name, row.type, row.default) for row in preview.params] == [("top_k", "long", "5")]


def test_a_long_file_is_cut_at_the_limit_between_characters(s3):
    # "é" is two bytes: the limit falls inside one, which is dropped rather than garbled.
    body = b"flavors: {}\n# " + "é".encode() * mlmodel.MLMODEL_MAX_BYTES
    store, paths = _copied(s3, {"MLmodel": body})

    text, truncated = mlmodel.capture(store, "v/1", paths)

    assert truncated
    assert text is not None
    assert len(text.encode()) <= mlmodel.MLMODEL_MAX_BYTES
    assert body.decode().startswith(text)
    preview = mlmodel.parse(text, truncated)
    assert preview is not None
    assert preview.truncated
    assert preview.flavors == []


def test_a_copy_without_the_file_keeps_nothing(s3):
    store, paths = _copied(s3, {"model/MLmodel": SIGNED.encode()})  # not at the top level
    assert mlmodel.capture(store, "v/1", paths) == (None, False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("flavors: [unclosed\n", "while parsing"),
        ("- a list\n", "not a YAML mapping"),
        ("flavors: 3\n", "flavors are not a mapping"),
        ("signature: {inputs: 'not json'}\n", "Expecting value"),
        ("signature: {inputs: '[1]'}\n", "signature field is not a mapping"),
        ("a: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
        ("[" * 5000, ""),  # nested without end: refused, whatever the reason's words
    ],
)
def test_anything_else_is_shown_raw_with_the_reason(text, reason):
    preview = mlmodel.parse(text)
    assert preview is not None
    assert preview.error
    assert reason in preview.error
    assert preview.text == text
