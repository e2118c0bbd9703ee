"""Reads of model versions: by number, by alias, the latest per stage, the search, the download
URI, the activity trail, the history of tags and the newest versions of a model."""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from accounts import permissions
from kernel.errors import RegistryError
from registry import validation
from registry.artifacts.paths import version_folder
from registry.conf import registry_settings
from registry.errors import model_version_not_found, registered_model_not_found
from registry.models import (
    Activity,
    ActivityType,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    RegisteredModelAlias,
    Stage,
    VersionTagChange,
)
from registry.selectors import documents
from registry.selectors.common import (
    model_version_queryset,
    require_readable,
    search_page,
    with_tags_and_aliases,
)
from registry.selectors.registered_models import registered_model_by_name, registered_model_get

MAX_RESULTS_MODEL_VERSIONS_DEFAULT = 10_000


def model_version_by_number(name: str, number: int) -> ModelVersion:
    """A version with its registered model, unchecked: for services, which check themselves."""
    registered_model = registered_model_by_name(name)
    try:
        model_version = registered_model.versions.get(version=number)
    except ModelVersion.DoesNotExist:
        raise model_version_not_found(name, number) from None
    model_version.registered_model = registered_model
    return model_version


def model_version_get(*, actor: Any, name: Any, version: Any) -> ModelVersion:
    """A version prepared for output (tags, aliases), if the actor may read its model."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    # The usual case, the version exists: fetched with its model in one query, and shown only
    # once the model's permission passed. Otherwise the model alone decides 404 or 403 first.
    model_version = (
        model_version_queryset().filter(registered_model__name=name, version=number).first()
    )
    if model_version is not None:
        require_readable(actor, model_version.registered_model)
        return with_tags_and_aliases([model_version])[0]
    registered_model_get(actor=actor, name=name)
    raise model_version_not_found(name, number)


def model_version_get_by_alias(*, actor: Any, name: Any, alias: Any) -> ModelVersion:
    """The version an alias points at; ``latest`` (any case) is the highest version."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    queryset = model_version_queryset().filter(registered_model__name=name)
    is_latest = alias.lower() == "latest"
    if is_latest:
        model_version = queryset.order_by("-version").first()
    else:
        # The alias row by its unique (model, alias) key, so the lookup is one index probe
        # rather than a scan of every alias of that name across the registry.
        model_version = queryset.filter(
            pk__in=RegisteredModelAlias.objects.filter(
                registered_model__name=name, alias=alias
            ).values("model_version_id")
        ).first()
    if model_version is not None:
        # As in model_version_get: nothing is shown before the model's permission passed.
        require_readable(actor, model_version.registered_model)
        return with_tags_and_aliases([model_version])[0]
    registered_model_get(actor=actor, name=name)
    if is_latest:
        raise RegistryError.invalid(f"Registered model '{name}' has no versions.")
    # The reference server answers 400 here, not 404; clients match on the message.
    raise RegistryError.invalid(f"Registered model alias {alias} not found.")


def model_version_latest(*, actor: Any, name: Any, stages: Any = None) -> list[ModelVersion]:
    """The highest version in each requested stage (all four when none is given)."""
    name = validation.require_string(name, "name")
    wanted = validation.stages(stages) or list(Stage)
    registered_model = registered_model_get(actor=actor, name=name)
    latest = (
        ModelVersion.objects.filter(registered_model=registered_model, current_stage__in=wanted)
        .values("current_stage")
        .annotate(version=Max("version"))
        .values_list("version", flat=True)
    )
    return with_tags_and_aliases(
        list(
            model_version_queryset()
            .filter(registered_model=registered_model, version__in=list(latest))
            .order_by("version")
        )
    )


def _model_version_page(
    actor: Any,
    queryset: Any,
    filter_string: str | None,
    max_results: Any,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[ModelVersion], str]:
    return search_page(
        queryset.filter(permissions.readable_models_q(actor, model_field="registered_model_id")),
        entity="model_version",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_MODEL_VERSIONS_DEFAULT,
        max_max_results=registry_settings().max_results_model_versions,
    )


def model_version_search(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str]:
    """One page of model versions and the token of the next page ("" on the last)."""
    page, next_token = _model_version_page(
        actor, model_version_queryset(), filter_string, max_results, order_by, page_token
    )
    return with_tags_and_aliases(page), next_token


def model_version_search_documents(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """:func:`model_version_search` as the protocol's JSON, in one statement
    (docs/decisions/0019-hot-reads-in-one-statement.md)."""
    page, next_token = _model_version_page(
        actor,
        model_version_queryset().annotate(document=documents.model_version_json_annotation()),
        filter_string,
        max_results,
        order_by,
        page_token,
    )
    return documents.documents(page), next_token


def model_version_download_uri(
    *, actor: Any, name: Any, version: Any, artifacts_base_url: str
) -> str:
    """The absolute URL of the version's managed copy under the service's artifact endpoints
    (``artifacts_base_url`` is ``http(s)://<host>/api/2.0/mlflow-artifacts/artifacts``), so
    clients need no storage credentials. Only READY versions have one. A reference's is its
    ``storage_location``, which the client reads itself."""
    model_version = model_version_get(actor=actor, name=name, version=version)
    if model_version.is_reference:
        # Reference mode: the source is where the files are, as mlflow server answers.
        return model_version.storage_location
    if model_version.status != ModelVersionStatus.READY:
        raise RegistryError.invalid(
            f"Model version {model_version.version} of '{model_version.registered_model.name}' "
            f"is {model_version.status}: its artifacts are not available"
            + (f" ({model_version.status_message})." if model_version.status_message else " yet.")
        )
    return f"{artifacts_base_url.rstrip('/')}/{version_folder(model_version)}"


def model_version_tag_changes(
    *, registered_model: RegisteredModel, version: int, limit: int
) -> list[VersionTagChange]:
    """The latest ``limit`` changes of the version's tags, oldest first, read by model and
    number so they outlive the version (docs/decisions/0022-version-tag-history.md; the caller
    checked that the actor may read the model)."""
    latest = VersionTagChange.objects.filter(
        registered_model_id=registered_model.pk, version=version
    ).order_by("-created_at", "-id")[:limit]
    return list(reversed(latest))


def model_version_activities(*, actor: Any, name: Any, version: Any) -> list[Activity]:
    """The version's whole trail, oldest first, also once the version is deleted (the trail
    then ends with the deletion).

    ``name`` is the model's name now: whoever may read that model reads the trails of its
    versions, deleted or not (a version is found by its model and number, never reused). Once
    the model is deleted too, its grants are gone with it, so only registry admins read its
    versions' trails, by the name it had when it was deleted (the most recently deleted model
    of that name); to anyone else the name does not exist, as before.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    registered_model = RegisteredModel.objects.filter(name=name).first()
    model_id: int | None
    if registered_model is not None:
        require_readable(actor, registered_model)
        model_id = registered_model.pk
    elif permissions.is_admin(actor):
        model_id = (
            Activity.objects.filter(
                model_name=name, version=number, activity_type=ActivityType.DELETED_MODEL_VERSION
            )
            .exclude(registered_model_id__in=RegisteredModel.objects.values("pk"))
            .order_by("-created_at", "-id")
            .values_list("registered_model_id", flat=True)
            .first()
        )
        if model_id is None:
            raise model_version_not_found(name, number)
    else:
        raise registered_model_not_found(name)
    trail = list(
        Activity.objects.filter(registered_model_id=model_id, version=number).order_by(
            "created_at", "id"
        )
    )
    if not trail and (
        registered_model is None or not registered_model.versions.filter(version=number).exists()
    ):
        raise model_version_not_found(name, number)
    return trail


def model_versions_newest(*, registered_model: RegisteredModel, limit: int) -> list[ModelVersion]:
    """The model's newest versions, with who created them (for the web UI: the actor's
    permission was checked by the selector that gave the model)."""
    return list(registered_model.versions.select_related("created_by").order_by("-version")[:limit])


def model_version_pair(
    *, actor: Any, name: Any, a: Any, b: Any
) -> tuple[ModelVersion, ModelVersion]:
    """Two versions of one model, for their comparison (docs/ui.md, "Comparing versions"):
    prepared for output (tags, aliases), with who created them and ``manifest_or_none``, if the
    actor may read the model. A fixed number of queries."""
    name = validation.require_string(name, "name")
    numbers = []
    for parameter, value in (("a", a), ("b", b)):
        if value is None or value == "":
            raise RegistryError.invalid(f"Missing value for required parameter '{parameter}'.")
        try:
            numbers.append(validation.version_number(value))
        except RegistryError:
            raise RegistryError.invalid(
                f"Parameter '{parameter}' must be a version number, got '{value}'."
            ) from None
    registered_model = registered_model_get(actor=actor, name=name)
    found = {
        model_version.version: model_version
        for model_version in model_version_queryset()
        .select_related("created_by", "manifest")
        .filter(registered_model=registered_model, version__in=numbers)
    }
    for number in numbers:
        if number not in found:
            raise model_version_not_found(name, number)
    for model_version in found.values():
        model_version.registered_model = registered_model
        model_version.manifest_or_none = getattr(model_version, "manifest", None)
    with_tags_and_aliases(list(found.values()))
    return found[numbers[0]], found[numbers[1]]


def model_version_neighbours(*, model_version: ModelVersion) -> tuple[int | None, int | None]:
    """The number of the version before ``model_version`` that still exists, and of the
    newest version in Production (None where there is none): what its page offers to
    compare it with. Two queries; the caller checked that the actor may read the model."""
    versions = model_version.registered_model.versions
    previous = (
        versions.filter(version__lt=model_version.version)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    production = (
        versions.filter(current_stage=Stage.PRODUCTION)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return previous, production
