"""SQL ``LIKE`` / ``ILIKE`` as Django lookups: ``name__like="sk%"``, ``value__ilike="%Prod%"``.

Importing this module registers both lookups on ``CharField`` and ``TextField`` (and so on their
subclasses); ``registry.apps`` does that in ``ready()``.

Pattern language, the same on PostgreSQL and SQLite:

* ``%`` matches any run of characters (including none), ``_`` exactly one character;
* a backslash makes the next character literal (``a\\_b`` matches only ``a_b``); a trailing lone
  backslash stands for itself;
* ``like`` is case-sensitive, ``ilike`` case-insensitive.

PostgreSQL runs ``LIKE`` / ``ILIKE`` (whose default escape character is the backslash). SQLite's
``LIKE`` ignores case, so ``like`` becomes ``GLOB`` with the pattern translated (GLOB's own
``*``, ``?`` and ``[`` are bracketed so they match literally) and ``ilike`` becomes
``LIKE ... ESCAPE '\\'`` (SQLite folds the case of ASCII letters only). Patterns are always
bound as parameters.

:func:`like_matches` evaluates the same pattern language in Python, for the rare places that must
decide in advance whether a constant would match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db import NotSupportedError
from django.db.models import CharField, Lookup, TextField

__all__ = [
    "ILike",
    "Like",
    "like_matches",
    "like_pattern_size",
    "like_to_glob",
    "normalize_like_pattern",
]

_ESCAPE = "\\"

# A pattern element: ("any", "") for %, ("one", "") for _, ("char", c) for a literal character.
_Element = tuple[str, str]


def _elements(pattern: str) -> Iterator[_Element]:
    """Split a LIKE pattern into wildcards and literal characters, resolving backslashes."""
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == _ESCAPE:
            if index + 1 < length:
                yield ("char", pattern[index + 1])
                index += 2
                continue
            yield ("char", _ESCAPE)  # a trailing lone backslash stands for itself
        elif char == "%":
            yield ("any", "")
        elif char == "_":
            yield ("one", "")
        else:
            yield ("char", char)
        index += 1


def like_pattern_size(pattern: str) -> tuple[int, int]:
    """(characters, wildcards) of a LIKE pattern: an escaped character counts once and is no
    wildcard (``a\\_b`` is 3 characters, no wildcard)."""
    length = wildcards = 0
    for kind, _char in _elements(pattern):
        length += 1
        wildcards += kind != "char"
    return length, wildcards


def normalize_like_pattern(pattern: str) -> str:
    """Return ``pattern`` with a trailing lone backslash escaped.

    PostgreSQL rejects a pattern that ends with its escape character; the pattern language here
    reads such a backslash literally, so it is doubled before the pattern reaches the database.
    """
    trailing = len(pattern) - len(pattern.rstrip(_ESCAPE))
    if trailing % 2:
        return pattern + _ESCAPE
    return pattern


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern into an equivalent (case-sensitive) SQLite GLOB pattern."""
    parts: list[str] = []
    for kind, char in _elements(pattern):
        if kind == "any":
            parts.append("*")
        elif kind == "one":
            parts.append("?")
        elif char in "*?[":
            parts.append(f"[{char}]")
        else:
            parts.append(char)
    return "".join(parts)


def _like_regex(pattern: str, *, case_sensitive: bool) -> re.Pattern[str]:
    parts: list[str] = []
    for kind, char in _elements(pattern):
        if kind == "any":
            parts.append(".*")
        elif kind == "one":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE
    return re.compile("".join(parts), flags)


def like_matches(value: str, pattern: str, *, case_sensitive: bool) -> bool:
    """Whether ``value`` matches the LIKE ``pattern`` (``ILIKE`` when not ``case_sensitive``)."""
    return _like_regex(pattern, case_sensitive=case_sensitive).fullmatch(value) is not None


class _PatternLookup(Lookup):
    """Shared plumbing: a bound pattern on the right, a text column on the left."""

    case_sensitive: bool

    def get_prep_lookup(self) -> Any:
        value = super().get_prep_lookup()
        if isinstance(value, str):
            return normalize_like_pattern(value)
        return value

    def _sides(self, compiler: Any, connection: Any) -> tuple[str, str, list[Any]]:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return lhs_sql, rhs_sql, [*lhs_params, *rhs_params]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        # Any other backend: standard LIKE, with both sides upper-cased for ILIKE. Whether plain
        # LIKE is case-sensitive there, and its escape character, are the backend's defaults.
        lhs_sql, rhs_sql, params = self._sides(compiler, connection)
        if self.case_sensitive:
            return f"{lhs_sql} LIKE {rhs_sql}", params
        return f"UPPER({lhs_sql}) LIKE UPPER({rhs_sql})", params

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs_sql, rhs_sql, params = self._sides(compiler, connection)
        operator = "LIKE" if self.case_sensitive else "ILIKE"
        # The default escape character of PostgreSQL's LIKE is the backslash already.
        return f"{lhs_sql} {operator} {rhs_sql}", params


@CharField.register_lookup
@TextField.register_lookup
class Like(_PatternLookup):
    """Case-sensitive SQL ``LIKE``: ``Model.objects.filter(name__like="prod-%")``."""

    lookup_name = "like"
    case_sensitive = True

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if not self.rhs_is_direct_value():
            raise NotSupportedError(
                "The 'like' lookup on SQLite needs a literal pattern (it is translated to GLOB)."
            )
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        glob_params = [like_to_glob(p) if isinstance(p, str) else p for p in rhs_params]
        return f"{lhs_sql} GLOB {rhs_sql}", [*lhs_params, *glob_params]


@CharField.register_lookup
@TextField.register_lookup
class ILike(_PatternLookup):
    """Case-insensitive SQL ``ILIKE``: ``Model.objects.filter(name__ilike="%prod%")``."""

    lookup_name = "ilike"
    case_sensitive = False

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs_sql, rhs_sql, params = self._sides(compiler, connection)
        # SQLite's LIKE ignores the case of ASCII letters.
        return f"{lhs_sql} LIKE {rhs_sql} ESCAPE '\\'", params
