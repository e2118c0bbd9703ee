"""``models:/`` URIs: a version of this registry (``models:/<name>/<version|stage|latest>``,
``models:/<name>@<alias>``), or MLflow 3's logged model (``models:/<logged model id>``)."""

from __future__ import annotations

from dataclasses import dataclass

from registry.artifacts.sources.base import MODELS_URI_PREFIX, VERSION_PATTERN, invalid_source


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
            raise invalid_source(source, "expected models:/<name>@<alias>.")
        return RegistryVersionRef(name=name, alias=alias)
    name, suffix = rest.split("/", 1)
    if not name or not suffix:
        raise invalid_source(source, "expected models:/<name>/<version or stage>.")
    if "/" in suffix.rstrip("/"):
        raise invalid_source(
            source, "a copy takes a whole version: models:/<name>/<version> without a sub-path."
        )
    suffix = suffix.rstrip("/")
    if suffix.isdigit():
        if not VERSION_PATTERN.match(suffix):
            raise invalid_source(source, f"'{suffix}' is not a version number.")
        return RegistryVersionRef(name=name, version=int(suffix))
    return RegistryVersionRef(name=name, stage=suffix)
