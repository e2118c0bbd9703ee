"""Search support for the registry: the MLflow filter grammar, ``order_by`` and limits.

The public pieces, shared by the registered-model and model-version searches:

* :func:`parse_filter` turns a filter string into a list of :class:`Clause` objects, refusing
  anything outside the grammar with ``INVALID_PARAMETER_VALUE``;
* :func:`filter_q` turns those clauses into a ``Q`` for ``RegisteredModel.objects`` or
  ``ModelVersion.objects``;
* :func:`parse_order_by` turns ``order_by`` strings into Django ``order_by()`` arguments that
  always end in a unique key, so offset paging is stable (the paging itself is
  :mod:`kernel.paging`).

The grammar (protocol reference §5.1): ``clause [AND clause]*`` with ``AND`` in any case, and no
``OR``, ``NOT`` prefix or parentheses. A clause is ``identifier comparator value``:

* identifiers: ``name`` / ``attribute.name`` (and, for model versions, ``run_id``,
  ``source_path``, ``version_number``, ``model_id`` and, an extension of MLflow's grammar,
  ``artifact_digest``), or a tag as ``tags.<key>`` / ``tag.<key>``. An
  unquoted key may contain letters, digits, ``_``, ``-`` and dots (``tags.a.b`` is the key
  ``a.b``); any other key goes in backticks or double quotes (``tags.`x y` ``);
* values: strings in single or double quotes (a doubled quote inside stands for one quote;
  backslashes are kept as they are, so they still escape LIKE wildcards), parenthesised lists of
  strings for ``IN`` / ``NOT IN``, and unquoted integers for ``version_number``.

Every rejection is a :class:`~kernel.errors.RegistryError` with ``INVALID_PARAMETER_VALUE``;
no input string makes these functions raise anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from django.db.models import Exists, OuterRef, Q, QuerySet

from kernel.errors import RegistryError
from kernel.text import check_text, clip
from registry.lookups import (  # importing it registers the like / ilike lookups
    like_matches,
    like_pattern_size,
)
from registry.models import (
    INDEXED_TAG_VALUE_MAX_LENGTH,
    ModelVersionTag,
    RegisteredModelTag,
    indexed_tag_value,
)

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

Entity: TypeAlias = Literal["registered_model", "model_version"]
ClauseKind: TypeAlias = Literal["attribute", "tag"]
ClauseValue: TypeAlias = "str | int | tuple[str, ...]"

#: The tag that marks a registered model (or version) as an MLflow prompt. A model without it is
#: not a prompt, so comparisons on this key treat an absent tag as the value ``'false'``.
PROMPT_TAG_KEY: Final = "mlflow.prompt.is_prompt"
_PROMPT_TAG_DEFAULT: Final = "false"

#: Limits that keep any filter cheap and within what both database backends can run. Each tag
#: clause is an EXISTS subquery, and PostgreSQL's planning time grows steeply with their number
#: (about 30 ms for 20, a second for 100); SQLite caps the expression depth, the number of bound
#: variables and the length of LIKE patterns. Matching a LIKE pattern costs up to its length
#: times the length of the value in PostgreSQL (a 10,000-character pattern against four
#: 100,000-character tag values: 9.5 s; 500 characters: 0.3 s), and more when ``_`` wildcards
#: follow a ``%``; an escaped ``\%`` or ``\_`` counts as one character and no wildcard. What
#: is left of a slow search is cut by DATABASE_STATEMENT_TIMEOUT_MS (see
#: :func:`kernel.paging.paginate`).
MAX_CLAUSES: Final = 20
MAX_IN_LIST_VALUES: Final = 1000
MAX_LIKE_PATTERN_LENGTH: Final = 500
MAX_LIKE_WILDCARDS: Final = 20

_STRING_COMPARATORS: Final = ("=", "!=", "LIKE", "ILIKE")
_LIST_COMPARATORS: Final = ("IN", "NOT IN")
_NUMERIC_COMPARATORS: Final = ("=", "!=", ">", ">=", "<", "<=")
_SYMBOL_COMPARATORS: Final = frozenset(("=", "!=", ">", ">=", "<", "<="))
_WORD_COMPARATORS: Final = frozenset(("LIKE", "ILIKE", "IN"))
_ENTITY_TYPES: Final = ("attribute", "tag", "tags")


@dataclass(frozen=True)
class Clause:
    """One ``identifier comparator value`` comparison of a filter.

    ``kind`` is ``"attribute"`` (``key`` is the protocol's attribute name, e.g.
    ``"version_number"``) or ``"tag"`` (``key`` is the tag key, unquoted). ``comparator`` is
    upper-case. ``value`` is a ``str``, an ``int`` (``version_number`` only) or a tuple of
    strings (``IN`` / ``NOT IN``).
    """

    kind: ClauseKind
    key: str
    comparator: str
    value: str | int | tuple[str, ...]


@dataclass(frozen=True)
class _Attribute:
    """A searchable attribute: its model field path and the comparators it accepts."""

    field: str
    comparators: tuple[str, ...]
    numeric: bool = False


_ATTRIBUTES: Final[Mapping[str, Mapping[str, _Attribute]]] = {
    "registered_model": {
        "name": _Attribute("name", _STRING_COMPARATORS + _LIST_COMPARATORS),
    },
    "model_version": {
        "name": _Attribute("registered_model__name", _STRING_COMPARATORS + _LIST_COMPARATORS),
        "run_id": _Attribute("run_id", _STRING_COMPARATORS + _LIST_COMPARATORS),
        "source_path": _Attribute("source", _STRING_COMPARATORS),
        "version_number": _Attribute("version", _NUMERIC_COMPARATORS, numeric=True),
        "model_id": _Attribute("model_id", _STRING_COMPARATORS + _LIST_COMPARATORS),
        # An extension of MLflow's grammar: versions whose managed copy has this digest.
        "artifact_digest": _Attribute("artifact_digest", _STRING_COMPARATORS + _LIST_COMPARATORS),
    },
}

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

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNQUOTED_KEY = re.compile(r"[\w.\-]+")
_SYMBOLS = re.compile(r"[<>=!]+")
_BARE_VALUE = re.compile(r"""[^\s()'"`,]+""")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INTEGER_DIGITS: Final = 18


def _check_entity(entity: str) -> None:
    if entity not in _ATTRIBUTES:
        raise ValueError(f"Unknown search entity {entity!r}")


def _check_like_pattern(pattern: str, comparator: str, key: str) -> None:
    length, wildcards = like_pattern_size(pattern)
    if length > MAX_LIKE_PATTERN_LENGTH:
        raise RegistryError.invalid(
            f"The {comparator} pattern for '{clip(key)}' is too long: {length} characters "
            f"(at most {MAX_LIKE_PATTERN_LENGTH} are allowed)."
        )
    if wildcards > MAX_LIKE_WILDCARDS:
        raise RegistryError.invalid(
            f"The {comparator} pattern for '{clip(key)}' has too many wildcards: {wildcards} "
            f"(at most {MAX_LIKE_WILDCARDS} % and _ are allowed; write a literal % or _ as "
            "\\% or \\_)."
        )


def _set_repr(keys: Sequence[str]) -> str:
    return "{" + ", ".join(f"'{key}'" for key in keys) + "}"


# ---------------------------------------------------------------------------------------------
# Filter parsing


class _FilterParser:
    """A hand-written recursive-descent parser over the filter string (no regex backtracking
    over the whole input, every failure a precise message)."""

    def __init__(self, text: str, entity: Entity) -> None:
        self.text = text
        self.pos = 0
        self.attributes = _ATTRIBUTES[entity]

    # -- helpers -------------------------------------------------------------------------

    def error(self, detail: str) -> RegistryError:
        return RegistryError.invalid(f"Invalid filter '{clip(self.text)}': {detail}")

    def invalid_clause(self) -> RegistryError:
        return RegistryError.invalid(
            f"Invalid clause(s) in filter string: {clip(self.text[self.pos :])} "
            "(clauses can only be joined with AND; OR, NOT and parentheses are not supported)"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        return found.group() if found else ""

    def found(self) -> str:
        """A short description of what is at the current position."""
        if self.at_end():
            return "the end of the filter"
        return f"'{clip(self.text[self.pos : self.pos + 20])}'"

    def read_quoted(self, quote: str, what: str) -> str:
        """Read a string in ``quote`` characters starting at the current position; a doubled
        quote character inside stands for one."""
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise self.error(
                    f"unterminated {what} starting at position {start}: {clip(self.text[start:])}"
                )
            parts.append(self.text[self.pos : end])
            self.pos = end + 1
            if self.peek() == quote:
                parts.append(quote)
                self.pos += 1
                continue
            return "".join(parts)

    # -- grammar -------------------------------------------------------------------------

    def parse(self) -> list[Clause]:
        clauses: list[Clause] = []
        self.skip_whitespace()
        while True:
            clauses.append(self.clause())
            if len(clauses) > MAX_CLAUSES:
                raise self.error(f"too many clauses (at most {MAX_CLAUSES} are allowed)")
            self.skip_whitespace()
            if self.at_end():
                return clauses
            word = self.match(_WORD)
            if word.upper() != "AND":
                raise self.invalid_clause()
            self.pos += len(word)
            self.skip_whitespace()
            if self.at_end():
                raise self.error("expected a clause after the final AND")

    def clause(self) -> Clause:
        kind, key, shown_identifier = self.identifier()
        comparator = self.comparator(shown_identifier)
        attribute = self.attributes[key] if kind == "attribute" else None
        allowed = attribute.comparators if attribute else _STRING_COMPARATORS
        if comparator not in allowed:
            subject = f"attribute '{key}'" if attribute else f"tag '{clip(key)}'"
            raise RegistryError.invalid(
                f"Invalid comparator '{comparator}' for {subject}. "
                f"Valid comparators are: {', '.join(allowed)}"
            )
        value = self.value(f"{clip(shown_identifier)} {comparator}", comparator, key, attribute)
        return Clause(kind=kind, key=key, comparator=comparator, value=value)

    def identifier(self) -> tuple[ClauseKind, str, str]:
        start = self.pos
        if self.peek() == "(":
            raise self.invalid_clause()
        word = self.match(_WORD)
        if not word:
            raise self.error(
                f"expected an attribute or a tag (e.g. name, tags.<key>) at position "
                f"{self.pos}, found {self.found()}"
            )
        if word.upper() in ("NOT", "OR", "AND"):
            raise self.invalid_clause()
        self.pos += len(word)
        if self.peek() != ".":
            kind: ClauseKind = "attribute"
            key = word
        else:
            self.pos += 1
            if word not in _ENTITY_TYPES:
                raise RegistryError.invalid(
                    f"Invalid entity type '{clip(word)}'. Valid entity types are {_ENTITY_TYPES}"
                )
            kind = "attribute" if word == "attribute" else "tag"
            key = self.key(word)
        if kind == "attribute" and key not in self.attributes:
            raise RegistryError.invalid(
                f"Invalid attribute key '{clip(key)}' specified. "
                f"Valid keys are '{_set_repr(list(self.attributes))}'"
            )
        return kind, key, self.text[start : self.pos]

    def key(self, entity_type: str) -> str:
        quote = self.peek()
        if quote in ("`", '"'):
            key = self.read_quoted(quote, "quoted key")
        else:
            key = self.match(_UNQUOTED_KEY)
            self.pos += len(key)
            if not key:
                raise self.error(
                    f"expected a key after '{entity_type}.', found {self.found()} "
                    "(quote keys with special characters in backticks)"
                )
        if not key:
            raise self.error(f"the key after '{entity_type}.' must not be empty")
        return key

    def comparator(self, shown_identifier: str) -> str:
        self.skip_whitespace()
        symbols = self.match(_SYMBOLS)
        if symbols:
            self.pos += len(symbols)
            if symbols not in _SYMBOL_COMPARATORS:
                raise RegistryError.invalid(f"Invalid comparator '{symbols}'")
            return symbols
        word = self.match(_WORD)
        if not word:
            raise self.error(
                f"expected a comparator after '{clip(shown_identifier)}', found {self.found()}"
            )
        self.pos += len(word)
        upper = word.upper()
        if upper == "IS":
            raise RegistryError.invalid(
                "Invalid comparator 'IS': IS NULL / IS NOT NULL is not supported in registry "
                "searches"
            )
        if upper == "NOT":
            self.skip_whitespace()
            following = self.match(_WORD)
            if following.upper() != "IN":
                raise RegistryError.invalid(
                    f"Invalid comparator '{clip(f'NOT {following}'.strip())}'"
                )
            self.pos += len(following)
            return "NOT IN"
        if upper not in _WORD_COMPARATORS:
            raise RegistryError.invalid(f"Invalid comparator '{clip(word)}'")
        return upper

    def value(
        self, context: str, comparator: str, key: str, attribute: _Attribute | None
    ) -> ClauseValue:
        self.skip_whitespace()
        if self.at_end():
            raise self.error(f"expected a value after '{context}'")
        if comparator in _LIST_COMPARATORS:
            if self.peek() != "(":
                raise self.error(
                    f"expected a parenthesised list of quoted strings after '{context}', "
                    f"e.g. ('a', 'b'); found {self.found()}"
                )
            return self.string_list()
        char = self.peek()
        if char == "(":
            raise self.error(
                f"a parenthesised list is only allowed with IN and NOT IN (after '{context}')"
            )
        if char in ("'", '"'):
            text = self.read_quoted(char, "string")
            if attribute is not None and attribute.numeric:
                return self.integer(text.strip(), key, quoted=True)
            if comparator in ("LIKE", "ILIKE"):
                _check_like_pattern(text, comparator, key)
            return text
        if char == "`":
            shown = f"`{clip(self.read_quoted(char, 'quoted value'))}`"
        else:
            bare = self.match(_BARE_VALUE)
            if not bare:
                raise self.error(f"expected a value after '{context}', found {self.found()}")
            self.pos += len(bare)
            shown = clip(bare)
            if attribute is not None and attribute.numeric:
                return self.integer(bare, key, quoted=False)
            if _NUMBER.fullmatch(bare):
                raise RegistryError.invalid(
                    f"Expected a quoted string value for '{clip(key)}' (e.g. 'my-value'). "
                    f"Got value {shown}"
                )
        raise RegistryError.invalid(
            "Parameter value is either not quoted or unidentified quote types used for string "
            f"value {shown}. Use either single or double quotes."
        )

    def integer(self, text: str, key: str, *, quoted: bool) -> int:
        shown = f"'{clip(text)}'" if quoted else clip(text)
        if not _INTEGER.fullmatch(text):
            raise RegistryError.invalid(
                f"Expected an integer value for '{key}', got {shown or 'nothing'}"
            )
        if len(text.lstrip("+-")) > _MAX_INTEGER_DIGITS:
            raise RegistryError.invalid(f"The value for '{key}' is out of range: {shown}")
        return int(text)

    def string_list(self) -> tuple[str, ...]:
        start = self.pos
        self.pos += 1  # the opening parenthesis
        self.skip_whitespace()
        if self.peek() == ")":
            raise self.error(
                "While parsing a list in the query, expected a non-empty list of string values, "
                "but got empty list"
            )
        items: list[str] = []
        while True:
            self.skip_whitespace()
            quote = self.peek()
            if quote not in ("'", '"'):
                if self.at_end():
                    raise self.error(f"unterminated list starting at position {start}")
                raise self.error(
                    "While parsing a list in the query, expected a quoted string value, "
                    f"found {self.found()}"
                )
            items.append(self.read_quoted(quote, "string"))
            if len(items) > MAX_IN_LIST_VALUES:
                raise self.error(
                    f"too many values in a list (at most {MAX_IN_LIST_VALUES} are allowed)"
                )
            self.skip_whitespace()
            separator = self.peek()
            self.pos += 1
            if separator == ")":
                return tuple(items)
            if separator != ",":
                self.pos -= 1
                if self.at_end():
                    raise self.error(f"unterminated list starting at position {start}")
                raise self.error(
                    f"expected ',' or ')' in the list starting at position {start}, "
                    f"found {self.found()}"
                )


def parse_filter(filter_string: str | None, *, entity: Entity) -> list[Clause]:
    """Parse an MLflow registry search filter into clauses that are all AND-ed together.

    ``entity`` selects the searchable attributes: ``"registered_model"`` (``name``) or
    ``"model_version"`` (``name``, ``run_id``, ``source_path``, ``version_number``,
    ``model_id``, ``artifact_digest``). An empty or blank filter (or ``None``) gives ``[]``.
    Anything else that does not fit the grammar raises ``RegistryError`` with
    ``INVALID_PARAMETER_VALUE``.
    """
    _check_entity(entity)
    if filter_string is None:
        return []
    if not isinstance(filter_string, str):
        raise RegistryError.invalid("Invalid filter: it must be a string.")
    if not filter_string.strip():
        return []
    check_text(filter_string, "filter")
    return _FilterParser(filter_string, entity).parse()


# ---------------------------------------------------------------------------------------------
# Filter → Q


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


def _attribute_q(clause: Clause, attribute: _Attribute) -> Q:
    field = attribute.field
    comparator = clause.comparator
    value = clause.value
    if comparator not in attribute.comparators:
        raise RegistryError.invalid(
            f"Invalid comparator '{comparator}' for attribute '{clause.key}'"
        )
    if comparator in _LIST_COMPARATORS:
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
    _check_entity(entity)
    attributes = _ATTRIBUTES[entity]
    result = Q()
    for clause in clauses:
        if clause.kind == "tag":
            result &= _tag_q(clause, entity)
        elif clause.kind == "attribute" and clause.key in attributes:
            result &= _attribute_q(clause, attributes[clause.key])
        else:
            raise RegistryError.invalid(f"Invalid {clause.kind} key '{clause.key}' specified.")
    return result


# ---------------------------------------------------------------------------------------------
# order_by


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
            f"Invalid order by key '{clip(key)}' specified. "
            f"Valid keys are '{_set_repr(list(keys))}'"
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
    _check_entity(entity)
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
