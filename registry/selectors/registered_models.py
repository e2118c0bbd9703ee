"""Reads of registered models: by name, for output, and the search."""

from __future__ import annotations

from typing import Any

from accounts import permissions
from kernel.errors import RegistryError
from registry import search, validation
from registry.conf import registry_settings
from registry.errors import registered_model_not_found
from registry.models import RegisteredModel
from registry.selectors import documents
from registry.selectors.common import (
    attach_latest_versions,
    registered_model_queryset,
    require_readable,
    search_page,
    with_model_tags_and_aliases,
)

MAX_RESULTS_REGISTERED_MODELS_DEFAULT = 100


def registered_model_by_name(name: str) -> RegisteredModel:
    """The registered model called ``name``, unchecked: for services, which check themselves."""
    try:
        return RegisteredModel.objects.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise registered_model_not_found(name) from None


def registered_model_get(*, actor: Any, name: Any) -> RegisteredModel:
    """The registered model, if the actor may read it (no tags, aliases or latest versions)."""
    return require_readable(
        actor, registered_model_by_name(validation.require_string(name, "name"))
    )


def registered_model_detail(*, actor: Any, name: Any) -> RegisteredModel:
    """The registered model prepared for output: tags, aliases and latest versions."""
    name = validation.require_string(name, "name")
    try:
        registered_model = registered_model_queryset().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise registered_model_not_found(name) from None
    require_readable(actor, registered_model)
    with_model_tags_and_aliases([registered_model])
    attach_latest_versions([registered_model])
    return registered_model


def _structured_clauses(
    name_contains: str | None, tag_key: str | None, tag_value: str | None
) -> list[search.Clause]:
    """The clauses of :func:`registered_model_search`'s structured arguments: what a filter
    string would give, with nothing to quote or parse."""
    clauses = []
    if name_contains:
        literal = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(search.Clause("attribute", "name", "ILIKE", f"%{literal}%"))
    if tag_key is not None:
        if not tag_key:
            raise RegistryError.invalid("The tag key to search for must not be empty.")
        if tag_value is None:
            clauses.append(search.Clause("tag", tag_key, "LIKE", "%"))
        else:
            clauses.append(search.Clause("tag", tag_key, "=", tag_value))
    return clauses


def _registered_model_page(
    actor: Any,
    queryset: Any,
    filter_string: str | None,
    max_results: Any,
    order_by: list[str] | None,
    page_token: str | None,
    extra_clauses: list[search.Clause],
) -> tuple[list[RegisteredModel], str]:
    return search_page(
        queryset.filter(permissions.readable_models_q(actor)),
        entity="registered_model",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_REGISTERED_MODELS_DEFAULT,
        max_max_results=registry_settings().max_results_registered_models,
        extra_clauses=extra_clauses,
    )


def registered_model_search(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
    name_contains: str | None = None,
    tag_key: str | None = None,
    tag_value: str | None = None,
) -> tuple[list[RegisteredModel], str]:
    """One page of registered models and the token of the next page ("" on the last).

    Besides ``filter_string``, the models can be narrowed by parts (the web UI's search form):
    ``name_contains`` (matched literally, ignoring case) and ``tag_key`` (the models with that
    tag; with ``tag_value``, with that value)."""
    page, next_token = _registered_model_page(
        actor,
        registered_model_queryset(),
        filter_string,
        max_results,
        order_by,
        page_token,
        _structured_clauses(name_contains, tag_key, tag_value),
    )
    with_model_tags_and_aliases(page)
    attach_latest_versions(page)
    return page, next_token


def registered_model_search_documents(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """:func:`registered_model_search` (without the web UI's parts) as the protocol's JSON, in
    one statement (docs/decisions/0019-hot-reads-in-one-statement.md)."""
    page, next_token = _registered_model_page(
        actor,
        RegisteredModel.objects.annotate(document=documents.registered_model_json_annotation()),
        filter_string,
        max_results,
        order_by,
        page_token,
        [],
    )
    return documents.documents(page), next_token
