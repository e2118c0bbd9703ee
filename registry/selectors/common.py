"""What the read selectors share: the objects they prepare for output, the read check and one
page of a search.

Objects returned for output carry what the serializers need as plain lists, set here in a
fixed number of queries whatever the number of objects: ``tag_list`` and ``alias_list``, and on
registered models ``latest_versions`` (docs/decisions/0011-reads-attach-plain-lists.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import Model, OuterRef, QuerySet, Subquery, TextField, Value

from accounts import permissions
from accounts.permissions import Level
from kernel import paging
from registry import search
from registry.models import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
)


def model_version_queryset() -> QuerySet[ModelVersion]:
    """Versions with their registered model; :func:`with_tags_and_aliases` adds the rest."""
    return ModelVersion.objects.select_related("registered_model")


def registered_model_queryset() -> QuerySet[RegisteredModel]:
    """Registered models; :func:`with_model_tags_and_aliases` adds their tags and aliases."""
    return RegisteredModel.objects.select_related("created_by")


_Row = TypeVar("_Row", bound=Model)


def _by_owner(rows: QuerySet[_Row], owner_field: str) -> dict[int, list[_Row]]:
    """``rows`` (one query) grouped by the primary key of their owner, in ``rows``' order.

    The selectors set each owner's group on it as a plain list, which the serializers and the
    web UI read (docs/decisions/0011-reads-attach-plain-lists.md): what ``prefetch_related``
    would give, without its cost per object (a filtered queryset built for each object and
    each relation), which was most of the time of a search returning many objects.
    """
    by_owner: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_owner[getattr(row, owner_field)].append(row)
    return by_owner


def _with_tags(model_versions: list[ModelVersion]) -> list[ModelVersion]:
    """Set each version's ``tag_list`` (by id): one query."""
    if model_versions:
        ids = [model_version.pk for model_version in model_versions]
        tags = _by_owner(
            ModelVersionTag.objects.filter(model_version_id__in=ids).order_by("id"),
            "model_version_id",
        )
        for model_version in model_versions:
            model_version.tag_list = tags.get(model_version.pk, [])
    return model_versions


def with_tags_and_aliases(model_versions: list[ModelVersion]) -> list[ModelVersion]:
    """Set each version's ``tag_list`` (by id) and ``alias_list`` (by name): two queries."""
    if model_versions:
        _with_tags(model_versions)
        ids = [model_version.pk for model_version in model_versions]
        aliases = _by_owner(
            RegisteredModelAlias.objects.filter(model_version_id__in=ids).order_by("alias"),
            "model_version_id",
        )
        for model_version in model_versions:
            model_version.alias_list = aliases.get(model_version.pk, [])
    return model_versions


def with_tags_and_aliases_of(model_version: ModelVersion) -> ModelVersion:
    """Set one version's ``tag_list`` (by id) and ``alias_list`` (by name) in one statement (a
    ``UNION ALL`` of the two tables), for the answer of a write that holds the version
    (docs/decisions/0021-writes-in-fewer-statements.md)."""
    # No ORDER BY in the parts (SQLite refuses one there): sorted below.
    tags = (
        ModelVersionTag.objects.filter(model_version_id=model_version.pk)
        .order_by()
        .values_list("id", "key", "value")
    )
    aliases = (
        RegisteredModelAlias.objects.filter(model_version_id=model_version.pk)
        .order_by()
        .annotate(none=Value(None, output_field=TextField()))
        .values_list("id", "alias", "none")
    )
    model_version.tag_list = []
    model_version.alias_list = []
    for pk, name, value in tags.union(aliases, all=True):
        if value is None:  # tag values are never NULL: an alias
            model_version.alias_list.append(
                RegisteredModelAlias(
                    pk=pk,
                    alias=name,
                    model_version=model_version,
                    registered_model_id=model_version.registered_model_id,
                )
            )
        else:
            model_version.tag_list.append(
                ModelVersionTag(pk=pk, key=name, value=value, model_version=model_version)
            )
    model_version.tag_list.sort(key=lambda tag: tag.pk)
    model_version.alias_list.sort(key=lambda alias: alias.alias)
    return model_version


def with_model_tags_and_aliases(
    registered_models: list[RegisteredModel],
) -> list[RegisteredModel]:
    """Set each model's ``tag_list`` (by id) and ``alias_list`` (by name, with the version each
    points at): two queries."""
    if registered_models:
        ids = [registered_model.pk for registered_model in registered_models]
        tags = _by_owner(
            RegisteredModelTag.objects.filter(registered_model_id__in=ids).order_by("id"),
            "registered_model_id",
        )
        aliases = _by_owner(
            RegisteredModelAlias.objects.filter(registered_model_id__in=ids)
            .select_related("model_version")
            .order_by("alias"),
            "registered_model_id",
        )
        for registered_model in registered_models:
            registered_model.tag_list = tags.get(registered_model.pk, [])
            registered_model.alias_list = aliases.get(registered_model.pk, [])
    return registered_models


def attach_latest_versions(registered_models: Sequence[RegisteredModel]) -> None:
    """Set ``latest_versions`` on each model: its highest version per stage, in three queries.

    The first finds, for each model of the page and each stage, the id of its highest version
    (one probe of the (model, stage, version) index each); the second reads those versions, the
    third their tags.
    """
    if not registered_models:
        return
    by_id = {registered_model.pk: registered_model for registered_model in registered_models}
    highest = {
        f"latest_{index}": Subquery(
            ModelVersion.objects.filter(registered_model=OuterRef("pk"), current_stage=stage)
            .order_by("-version")
            .values("pk")[:1]
        )
        for index, stage in enumerate(Stage.values)
    }
    ids = [
        pk
        for row in RegisteredModel.objects.filter(pk__in=by_id)
        .annotate(**highest)
        .values_list(*highest)
        for pk in row
        if pk is not None
    ]
    found: dict[int, list[ModelVersion]] = defaultdict(list)
    versions = _with_tags(list(ModelVersion.objects.filter(pk__in=ids).order_by("version")))
    for model_version in versions:
        model_version.registered_model = by_id[model_version.registered_model_id]
        found[model_version.registered_model_id].append(model_version)
    for registered_model in registered_models:
        registered_model.latest_versions = found.get(registered_model.pk, [])


def require_readable(actor: Any, registered_model: RegisteredModel) -> RegisteredModel:
    permissions.require_level(actor, registered_model, Level.CAN_READ, action="read")
    return registered_model


def search_page(
    queryset: QuerySet[Any],
    *,
    entity: search.Entity,
    filter_string: str | None,
    max_results: Any,
    order_by: list[str] | None,
    page_token: str | None,
    default_max_results: int,
    max_max_results: int,
    extra_clauses: Sequence[search.Clause] = (),
) -> tuple[list[Any], str]:
    """One page of ``queryset`` under the protocol's filter, order and paging rules, and the
    token of the next page ("" on the last)."""
    clauses = [*search.parse_filter(filter_string, entity=entity), *extra_clauses]
    ordering = search.parse_order_by(order_by, entity=entity)
    return paging.paginate(
        queryset.filter(search.filter_q(clauses, entity=entity)).order_by(*ordering),
        max_results=max_results,
        page_token=page_token,
        default=default_max_results,
        maximum=max_max_results,
        keyset=ordering,
    )
