"""Reads of the registry. Every list is paged and runs a fixed number of queries.

Objects returned for output carry what the serializers need prefetched: ``tags``, ``aliases``
and, on registered models, ``latest_versions`` (the highest version in each stage).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Max, Prefetch, Q, QuerySet

from registry import search, validation
from registry.errors import RegistryError
from registry.models import ModelVersion, RegisteredModel, RegisteredModelAlias, Stage

MAX_RESULTS_REGISTERED_MODELS_DEFAULT = 100
MAX_RESULTS_MODEL_VERSIONS_DEFAULT = 10_000


def _model_version_queryset() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("registered_model").prefetch_related(
        "tags", Prefetch("aliases", queryset=RegisteredModelAlias.objects.order_by("alias"))
    )


def _registered_model_queryset() -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.prefetch_related(
        "tags",
        Prefetch(
            "aliases",
            queryset=RegisteredModelAlias.objects.select_related("model_version").order_by("alias"),
        ),
    )


def _attach_latest_versions(registered_models: Sequence[RegisteredModel]) -> None:
    """Set ``latest_versions`` on each model: its highest version per stage, in two queries."""
    if not registered_models:
        return
    by_id = {registered_model.pk: registered_model for registered_model in registered_models}
    latest = (
        ModelVersion.objects.filter(registered_model_id__in=by_id)
        .values("registered_model_id", "current_stage")
        .annotate(version=Max("version"))
    )
    wanted = Q(pk__in=[])
    for row in latest:
        wanted |= Q(registered_model_id=row["registered_model_id"], version=row["version"])
    found: dict[int, list[ModelVersion]] = defaultdict(list)
    if wanted.children:
        versions = ModelVersion.objects.filter(wanted).prefetch_related("tags").order_by("version")
        for model_version in versions:
            model_version.registered_model = by_id[model_version.registered_model_id]
            found[model_version.registered_model_id].append(model_version)
    for registered_model in registered_models:
        registered_model.latest_versions = found.get(registered_model.pk, [])


def registered_model_get(*, name: Any) -> RegisteredModel:
    """The registered model with its tags and aliases (no latest versions)."""
    name = validation.require_string(name, "name")
    try:
        return RegisteredModel.objects.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None


def registered_model_detail(*, name: Any) -> RegisteredModel:
    """The registered model prepared for output: tags, aliases and latest versions."""
    name = validation.require_string(name, "name")
    try:
        registered_model = _registered_model_queryset().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None
    _attach_latest_versions([registered_model])
    return registered_model


def _search_page(
    queryset: QuerySet[Any],
    *,
    entity: search.Entity,
    filter_string: str | None,
    max_results: Any,
    order_by: list[str] | None,
    page_token: str | None,
    default_max_results: int,
    max_max_results: int,
) -> tuple[list[Any], str]:
    """One page of ``queryset`` under the protocol's filter, order and paging rules, and the
    token of the next page ("" on the last). Reads one row past the page to know if more exist.
    """
    limit = search.check_max_results(
        max_results, default=default_max_results, maximum=max_max_results
    )
    clauses = search.parse_filter(filter_string, entity=entity)
    ordering = search.parse_order_by(order_by, entity=entity)
    offset = search.decode_page_token(page_token)
    queryset = queryset.filter(search.filter_q(clauses, entity=entity)).order_by(*ordering)
    page = list(queryset[offset : offset + limit + 1])
    next_token = search.encode_page_token(offset + limit) if len(page) > limit else ""
    return page[:limit], next_token


def registered_model_search(
    *,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[RegisteredModel], str]:
    """One page of registered models and the token of the next page ("" on the last)."""
    page, next_token = _search_page(
        _registered_model_queryset(),
        entity="registered_model",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_REGISTERED_MODELS_DEFAULT,
        max_max_results=settings.REGISTRY["MAX_RESULTS_REGISTERED_MODELS"],
    )
    _attach_latest_versions(page)
    return page, next_token


def model_version_get(*, name: Any, version: Any) -> ModelVersion:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    try:
        return _model_version_queryset().get(registered_model__name=name, version=number)
    except ModelVersion.DoesNotExist:
        raise RegistryError.not_found(
            f"Model Version (name={name}, version={number}) not found"
        ) from None


def model_version_get_by_alias(*, name: Any, alias: Any) -> ModelVersion:
    """The version an alias points at; ``latest`` (any case) is the highest version."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    registered_model = registered_model_get(name=name)
    queryset = _model_version_queryset().filter(registered_model=registered_model)
    if alias.lower() == "latest":
        model_version = queryset.order_by("-version").first()
        if model_version is None:
            raise RegistryError.invalid(f"Registered model '{name}' has no versions.")
        return model_version
    model_version = queryset.filter(aliases__alias=alias).first()
    if model_version is None:
        # The reference server answers 400 here, not 404; clients match on the message.
        raise RegistryError.invalid(f"Registered model alias {alias} not found.")
    return model_version


def model_version_latest(*, name: Any, stages: Any = None) -> list[ModelVersion]:
    """The highest version in each requested stage (all four when none is given)."""
    name = validation.require_string(name, "name")
    wanted = validation.stages(stages) or list(Stage)
    registered_model = registered_model_get(name=name)
    latest = (
        ModelVersion.objects.filter(registered_model=registered_model, current_stage__in=wanted)
        .values("current_stage")
        .annotate(version=Max("version"))
        .values_list("version", flat=True)
    )
    return list(
        _model_version_queryset()
        .filter(registered_model=registered_model, version__in=list(latest))
        .order_by("version")
    )


def model_version_search(
    *,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str]:
    """One page of model versions and the token of the next page ("" on the last)."""
    return _search_page(
        _model_version_queryset(),
        entity="model_version",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_MODEL_VERSIONS_DEFAULT,
        max_max_results=settings.REGISTRY["MAX_RESULTS_MODEL_VERSIONS"],
    )


def model_version_download_uri(*, name: Any, version: Any) -> str:
    """Where the client fetches the version's files. Managed copies replace this later."""
    return model_version_get(name=name, version=version).source
