"""The MLflow filter grammar: what a filter string may say, and its parser.

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
no input string makes the parser raise anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from kernel.errors import RegistryError
from kernel.text import check_text, clip
from registry.lookups import like_pattern_size

Entity: TypeAlias = Literal["registered_model", "model_version"]
ClauseKind: TypeAlias = Literal["attribute", "tag"]
ClauseValue: TypeAlias = "str | int | tuple[str, ...]"

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
LIST_COMPARATORS: Final = ("IN", "NOT IN")
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
class Attribute:
    """A searchable attribute: its model field path and the comparators it accepts."""

    field: str
    comparators: tuple[str, ...]
    numeric: bool = False


ATTRIBUTES: Final[Mapping[str, Mapping[str, Attribute]]] = {
    "registered_model": {
        "name": Attribute("name", _STRING_COMPARATORS + LIST_COMPARATORS),
    },
    "model_version": {
        "name": Attribute("registered_model__name", _STRING_COMPARATORS + LIST_COMPARATORS),
        "run_id": Attribute("run_id", _STRING_COMPARATORS + LIST_COMPARATORS),
        "source_path": Attribute("source", _STRING_COMPARATORS),
        "version_number": Attribute("version", _NUMERIC_COMPARATORS, numeric=True),
        "model_id": Attribute("model_id", _STRING_COMPARATORS + LIST_COMPARATORS),
        # An extension of MLflow's grammar: versions whose managed copy has this digest.
        "artifact_digest": Attribute("artifact_digest", _STRING_COMPARATORS + LIST_COMPARATORS),
    },
}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNQUOTED_KEY = re.compile(r"[\w.\-]+")
_SYMBOLS = re.compile(r"[<>=!]+")
_BARE_VALUE = re.compile(r"""[^\s()'"`,]+""")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INTEGER_DIGITS: Final = 18


def check_entity(entity: str) -> None:
    """Refuse an entity the searches do not know (a programming error, not a client's)."""
    if entity not in ATTRIBUTES:
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


def set_repr(keys: Sequence[str]) -> str:
    """The keys as the reference server lists them in its messages: ``{'a', 'b'}``."""
    return "{" + ", ".join(f"'{key}'" for key in keys) + "}"


class _FilterParser:
    """A hand-written recursive-descent parser over the filter string (no regex backtracking
    over the whole input, every failure a precise message)."""

    def __init__(self, text: str, entity: Entity) -> None:
        self.text = text
        self.pos = 0
        self.attributes = ATTRIBUTES[entity]

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
                f"Valid keys are '{set_repr(list(self.attributes))}'"
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
        self, context: str, comparator: str, key: str, attribute: Attribute | None
    ) -> ClauseValue:
        self.skip_whitespace()
        if self.at_end():
            raise self.error(f"expected a value after '{context}'")
        if comparator in LIST_COMPARATORS:
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
    check_entity(entity)
    if filter_string is None:
        return []
    if not isinstance(filter_string, str):
        raise RegistryError.invalid("Invalid filter: it must be a string.")
    if not filter_string.strip():
        return []
    check_text(filter_string, "filter")
    return _FilterParser(filter_string, entity).parse()
