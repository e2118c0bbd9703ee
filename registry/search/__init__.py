"""Search support for the registry: the MLflow filter grammar, ``order_by`` and limits.

The public pieces, shared by the registered-model and model-version searches:

* :func:`parse_filter` turns a filter string into a list of :class:`Clause` objects, refusing
  anything outside the grammar with ``INVALID_PARAMETER_VALUE`` (the grammar and its parser:
  :mod:`registry.search.grammar`);
* :func:`filter_q` turns those clauses into a ``Q`` for ``RegisteredModel.objects`` or
  ``ModelVersion.objects``;
* :func:`parse_order_by` turns ``order_by`` strings into Django ``order_by()`` arguments that
  always end in a unique key, so offset paging is stable (the paging itself is
  :mod:`kernel.paging`). Both are in :mod:`registry.search.query`.

Every rejection is a :class:`~kernel.errors.RegistryError` with ``INVALID_PARAMETER_VALUE``;
no input string makes these functions raise anything else.
"""

from registry.search.grammar import (
    MAX_CLAUSES,
    MAX_IN_LIST_VALUES,
    MAX_LIKE_PATTERN_LENGTH,
    MAX_LIKE_WILDCARDS,
    Clause,
    ClauseKind,
    ClauseValue,
    Entity,
    parse_filter,
)
from registry.search.query import PROMPT_TAG_KEY, filter_q, parse_order_by

__all__ = [
    "MAX_CLAUSES",
    "MAX_IN_LIST_VALUES",
    "MAX_LIKE_PATTERN_LENGTH",
    "MAX_LIKE_WILDCARDS",
    "PROMPT_TAG_KEY",
    "Clause",
    "ClauseKind",
    "ClauseValue",
    "Entity",
    "filter_q",
    "parse_filter",
    "parse_order_by",
]
