"""Searches as queries: filter clauses as a ``Q``, ``order_by`` as ``order_by()`` arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from django.db.models import Exists, OuterRef, Q, QuerySet

from kernel.errors import RegistryError
from kernel.text import clip
from registry.lookups import like_matches  # importing it registers the like / ilike lookups
from registry.models import (
    INDEXED_TAG_VALUE_MAX_LENGTH,
    ModelVersionTag,
    RegisteredModelTag,
    indexed_tag_value,
)
from registry.search.grammar import (
    ATTRIBUTES,
    LIST_COMPARATORS,
    Attribute,
    Clause,
    Entity,
    check_entity,
    set_repr,
)

#: The tag that marks a registered model (or version) as an MLflow prompt. A model without it is
#: not a prompt, so comparisons on this key treat an absent tag as the value ``'false'``.
PROMPT_TAG_KEY: Final = "mlflow.prompt.is_prompt"
_PROMPT_TAG_DEFAULT: Final = "false"

# Tag model and the name of its foreign key to the tagged entity.
_TAGS: Final[Mapping[str, tuple[type[RegisteredModelTag] | type[ModelVersionTag], str]]] = {
    "registered_model": (RegisteredModelTag, "registered_model"),
    "model_version": (ModelVersionTag, "model_version"),
}

# order_by keys → model field; the default order; the tie-breakers (field, ascending).
_ORDER_KEYS: Final[Mapping[str, Mapping[str, str]]] = {
    "registered_model": {
        "name": "name",
        "timestamp": "updated_at",
        "last_updated_timestamp": "updated_at",
    },
    "model_version": {
        "name": "registered_model__name",
        "version_number": "version",
        "creation_timestamp": "created_at",
        "last_updated_timestamp": "updated_at",
    },
}
_DEFAULT_ORDER: Final[Mapping[str, tuple[str, ...]]] = {
    "registered_model": ("name ASC",),
    "model_version": ("last_updated_timestamp DESC", "name ASC", "version_number DESC"),
}
_TIE_BREAKERS: Final[Mapping[str, tuple[tuple[str, bool], ...]]] = {
    "registered_model": (("name", True),),
    "model_version": (("registered_model__name", True), ("version", False)),
}


def _value_condition(comparator: str, value: str) -> Q:
    """The condition on a tag row's ``value`` column."""
    if comparator == "=":
        if len(value) <= INDEXED_TAG_VALUE_MAX_LENGTH:
            # Implied by the equality; stated so that the partial (key, value) index serves it.
            return Q(value=value) & indexed_tag_value()
        return Q(value=value)
    if comparator == "!=":
        return ~Q(value=value)
    if comparator == "LIKE":
        return Q(value__like=value)
    if comparator == "ILIKE":
        return Q(value__ilike=value)
    raise RegistryError.invalid(f"Invalid comparator '{comparator}' for a tag")


def _value_matches(comparator: str, value: str, candidate: str) -> bool:
    """Whether ``candidate`` satisfies ``<tag value> <comparator> value`` (evaluated here)."""
    if comparator == "=":
        return candidate == value
    if comparator == "!=":
        return candidate != value
    return like_matches(candidate, value, case_sensitive=comparator == "LIKE")


def _tag_q(clause: Clause, entity: Entity) -> Q:
    if not isinstance(clause.value, str):
        raise RegistryError.invalid(f"Expected a quoted string value for tag '{clause.key}'")
    tag_model, owner = _TAGS[entity]
    tags: QuerySet = tag_model.objects.filter(**{owner: OuterRef("pk")}, key=clause.key)
    condition = _value_condition(clause.comparator, clause.value)
    if clause.key == PROMPT_TAG_KEY and _value_matches(
        clause.comparator, clause.value, _PROMPT_TAG_DEFAULT
    ):
        # An absent prompt tag reads as 'false', and 'false' satisfies this clause: match every
        # entity except those whose tag is present and fails the condition. (The tag key is
        # unique per entity, so "no failing row" is the same as "absent, or present and
        # passing".)
        return ~Q(Exists(tags.exclude(condition)))
    return Q(Exists(tags.filter(condition)))


def _attribute_q(clause: Clause, attribute: Attribute) -> Q:
    field = attribute.field
    comparator = clause.comparator
    value = clause.value
    if comparator not in attribute.comparators:
        raise RegistryError.invalid(
            f"Invalid comparator '{comparator}' for attribute '{clause.key}'"
        )
    if comparator in LIST_COMPARATORS:
        if not isinstance(value, tuple):
            raise RegistryError.invalid(f"Expected a list of values for '{clause.key}'")
        condition = Q(**{f"{field}__in": value})
        return ~condition if comparator == "NOT IN" else condition
    if attribute.numeric != isinstance(value, int) or isinstance(value, tuple | bool):
        raise RegistryError.invalid(f"Invalid value type for attribute '{clause.key}'")
    lookup = {
        "=": "exact",
        "!=": "exact",
        "LIKE": "like",
        "ILIKE": "ilike",
        ">": "gt",
        ">=": "gte",
        "<": "lt",
        "<=": "lte",
    }[comparator]
    condition = Q(**{f"{field}__{lookup}": value})
    return ~condition if comparator == "!=" else condition


def filter_q(clauses: Sequence[Clause], *, entity: Entity) -> Q:
    """Build the ``Q`` selecting the entities that satisfy every clause.

    For ``"registered_model"`` the ``Q`` applies to ``RegisteredModel.objects``, for
    ``"model_version"`` to ``ModelVersion.objects``. Tag clauses are ``EXISTS`` subqueries on
    the tag table, so they only match entities that have the tag; the exception is the prompt
    marker :data:`PROMPT_TAG_KEY`, whose absence reads as ``'false'`` (so
    ``tags.`mlflow.prompt.is_prompt` != 'true'`` matches every ordinary model).
    """
    check_entity(entity)
    attributes = ATTRIBUTES[entity]
    result = Q()
    for clause in clauses:
        if clause.kind == "tag":
            result &= _tag_q(clause, entity)
        elif clause.kind == "attribute" and clause.key in attributes:
            result &= _attribute_q(clause, attributes[clause.key])
        else:
            raise RegistryError.invalid(f"Invalid {clause.kind} key '{clause.key}' specified.")
    return result


def _parse_order_by_item(item: object, keys: Mapping[str, str]) -> tuple[str, bool]:
    """One ``"<key> [ASC|DESC]"`` string → (model field, ascending)."""
    if not isinstance(item, str):
        raise RegistryError.invalid(f"Invalid order_by clause {item!r}: it must be a string.")
    shown = clip(item)
    tokens = item.split()
    if len(tokens) > 2:
        raise RegistryError.invalid(f"Invalid order_by clause '{shown}'. Could not be parsed.")
    key = tokens[0]
    if key.startswith("attribute."):
        key = key[len("attribute.") :]
    if len(key) >= 2 and key[0] == key[-1] and key[0] in ('"', "`"):
        key = key[1:-1]
    ascending = True
    if len(tokens) == 2:
        direction = tokens[1].upper()
        if direction not in ("ASC", "DESC"):
            raise RegistryError.invalid(
                f"Invalid ordering key in order_by clause '{shown}': expected ASC or DESC."
            )
        ascending = direction == "ASC"
    if key not in keys:
        raise RegistryError.invalid(
            f"Invalid order by key '{clip(key)}' specified. Valid keys are '{set_repr(list(keys))}'"
        )
    return keys[key], ascending


def parse_order_by(order_by: Sequence[str] | None, *, entity: Entity) -> list[str]:
    """Turn MLflow ``order_by`` strings into arguments for ``QuerySet.order_by()``.

    Registered models accept ``name``, ``timestamp`` and ``last_updated_timestamp`` (both sort
    by the last update); model versions accept ``name``, ``version_number``,
    ``creation_timestamp`` and ``last_updated_timestamp``. Each key takes an optional ``ASC`` /
    ``DESC`` (any case; ascending by default); a field may appear once. Blank entries are
    ignored; no entries selects the default order (models: ``name``; versions:
    ``last_updated_timestamp DESC, name ASC, version_number DESC``). The tie-breakers (models:
    name ascending; versions: name ascending, then version number descending) are appended when
    not already used, and ``pk`` last, so the order is total and offset paging is stable.
    """
    check_entity(entity)
    if order_by is not None and (
        isinstance(order_by, str | bytes) or not isinstance(order_by, Sequence)
    ):
        raise RegistryError.invalid("Invalid order_by: it must be a list of strings.")
    items = [item for item in order_by or () if not isinstance(item, str) or item.strip()]
    if not items:
        items = list(_DEFAULT_ORDER[entity])
    keys = _ORDER_KEYS[entity]
    fields: list[tuple[str, bool]] = []
    for item in items:
        field, ascending = _parse_order_by_item(item, keys)
        if any(field == used for used, _ in fields):
            raise RegistryError.invalid(
                f"`order_by` contains duplicate fields: {[clip(str(i)) for i in items]}"
            )
        fields.append((field, ascending))
    for field, ascending in _TIE_BREAKERS[entity]:
        if all(field != used for used, _ in fields):
            fields.append((field, ascending))
    return [field if ascending else f"-{field}" for field, ascending in fields] + ["pk"]
