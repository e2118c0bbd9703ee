"""The MLflow ``MLmodel`` file of a managed copy: captured once, bounded, when the copy is
verified, and read back for the version page's preview (docs/decisions/0020-mlmodel-preview.md).

The page never reads the store: the copy task keeps the file's text (at most
``MLMODEL_MAX_BYTES``) on the version's manifest, and :func:`parse` turns it into the flavors
and the signature with PyYAML's safe loader. A longer file is kept cut at the limit and marked
truncated; it is shown raw, not parsed (a cut YAML document says nothing reliable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from registry.artifacts.errors import NotFoundError, TransientError
from registry.artifacts.storage import ArtifactStore

#: The name MLflow gives the file, at the root of a model's folder.
MLMODEL_NAME = "MLmodel"

#: The most of the file kept; more is cut here and marked truncated.
MLMODEL_MAX_BYTES = 64 * 1024

# A shown value (a flavor's setting, a default) longer than this is cut with "…".
_SHOWN_VALUE_CHARS = 200


def capture(store: ArtifactStore, folder: str, paths: list[str]) -> tuple[str | None, bool]:
    """The text of the copy's ``MLmodel`` (None when the copy has none) and whether it was cut
    at ``MLMODEL_MAX_BYTES``. Reads at most one byte past the limit from the store."""
    if MLMODEL_NAME not in paths:
        return None, False
    try:
        stream = store.open(f"{folder}/{MLMODEL_NAME}")
    except NotFoundError as exc:
        # Just copied and verified: gone since means the store changed under the copy.
        raise TransientError(f"{MLMODEL_NAME}: not found in the copy ({exc.message}).") from exc
    try:
        data = b""
        while len(data) <= MLMODEL_MAX_BYTES:
            chunk = stream.read(MLMODEL_MAX_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        stream.close()
    truncated = len(data) > MLMODEL_MAX_BYTES
    kept = data[:MLMODEL_MAX_BYTES]
    # A cut may split a character: drop the partial one rather than show a replacement mark.
    text = kept.decode("utf-8", errors="ignore" if truncated else "replace")
    # PostgreSQL text cannot hold NUL; a file with them is not YAML anyway.
    return text.replace("\x00", "\ufffd"), truncated


@dataclass(frozen=True)
class SchemaField:
    """One column, tensor or parameter of a signature, in words."""

    name: str
    type: str
    required: bool = True
    default: str = ""

    @property
    def key(self) -> tuple[str, str, bool, str]:
        return (self.name, self.type, self.required, self.default)


@dataclass(frozen=True)
class Flavor:
    name: str
    settings: list[tuple[str, str]]


@dataclass(frozen=True)
class MLmodelPreview:
    """What the page shows of an ``MLmodel`` file. ``error`` says why it could not be read
    (then only the raw text is shown); ``truncated`` that the text was cut at the limit."""

    text: str
    truncated: bool = False
    error: str = ""
    flavors: list[Flavor] = field(default_factory=list)
    has_signature: bool = False
    inputs: list[SchemaField] = field(default_factory=list)
    outputs: list[SchemaField] = field(default_factory=list)
    params: list[SchemaField] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def schema_parts(self) -> list[tuple[str, list[SchemaField]]]:
        return [
            (label, rows)
            for label, rows in (
                ("Inputs", self.inputs),
                ("Outputs", self.outputs),
                ("Parameters", self.params),
            )
            if rows
        ]


def _shown(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 1] + "…"


def _type_of(spec: dict[str, Any]) -> str:
    """A column's or tensor's type in one line: ``double``, ``tensor float64 [-1, 4]``,
    ``array<string>``, ``object{a: long}``."""
    kind = spec.get("type")
    if kind == "tensor":
        tensor = spec.get("tensor-spec") or {}
        if not isinstance(tensor, dict):
            return "tensor"
        shape = tensor.get("shape")
        shown = f" [{', '.join(str(n) for n in shape)}]" if isinstance(shape, list) else ""
        return f"tensor {tensor.get('dtype', '?')}{shown}"
    if kind == "array":
        items = spec.get("items")
        return f"array<{_type_of(items) if isinstance(items, dict) else '?'}>"
    if kind == "object":
        properties = spec.get("properties")
        if not isinstance(properties, dict):
            return "object"
        inner = ", ".join(
            f"{name}: {_type_of(value) if isinstance(value, dict) else '?'}"
            for name, value in sorted(properties.items())
        )
        return f"object{{{inner}}}"
    if kind == "map":
        values = spec.get("values")
        return f"map<string, {_type_of(values) if isinstance(values, dict) else '?'}>"
    return str(kind) if kind is not None else "?"


def _schema(raw: Any, *, params: bool = False) -> list[SchemaField]:
    """The fields of one part of a signature: MLflow writes each part as a JSON string of a
    list of specs (``[{"name": "x", "type": "double"}]``)."""
    if raw is None:
        return []
    specs = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(specs, list):
        raise ValueError("a signature part is not a list")
    rows = []
    for position, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ValueError("a signature field is not a mapping")
        name = spec.get("name")
        rows.append(
            SchemaField(
                name=str(name) if name is not None else f"(unnamed {position + 1})",
                type=_type_of(spec)
                + (f" {spec['shape']}" if params and spec.get("shape") is not None else ""),
                required=bool(spec.get("required", True)) if not params else False,
                default=_shown(spec.get("default")) if params else "",
            )
        )
    return rows


def parse(text: str | None, truncated: bool = False) -> MLmodelPreview | None:
    """The preview of a captured ``MLmodel`` (None when none was captured). Never raises: a
    file that is not the YAML MLflow writes gives a preview with ``error`` and its raw text."""
    if text is None:
        return None
    if truncated:
        return MLmodelPreview(text=text, truncated=True)
    try:
        document = yaml.safe_load(text)
        if not isinstance(document, dict):
            raise ValueError("the file is not a YAML mapping")
        flavors_raw = document.get("flavors") or {}
        if not isinstance(flavors_raw, dict):
            raise ValueError("its flavors are not a mapping")
        flavors = [
            Flavor(
                name=str(name),
                settings=[
                    (str(key), _shown(value))
                    for key, value in (settings.items() if isinstance(settings, dict) else [])
                    if not isinstance(value, dict | list)
                ],
            )
            for name, settings in flavors_raw.items()
        ]
        signature = document.get("signature")
        if signature is not None and not isinstance(signature, dict):
            raise ValueError("its signature is not a mapping")
        signature = signature or {}
        facts = [
            (label, _shown(document[key]))
            for key, label in (
                ("mlflow_version", "MLflow version"),
                ("utc_time_created", "Created (UTC)"),
                ("model_id", "Logged model"),
                ("run_id", "Run"),
                ("artifact_path", "Artifact path"),
                ("model_size_bytes", "Size (bytes)"),
            )
            if document.get(key) is not None
        ]
        return MLmodelPreview(
            text=text,
            flavors=flavors,
            has_signature=bool(signature),
            inputs=_schema(signature.get("inputs")),
            outputs=_schema(signature.get("outputs")),
            params=_schema(signature.get("params"), params=True),
            facts=facts,
        )
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return MLmodelPreview(text=text, error=reason[:300])
