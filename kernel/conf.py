"""Settings groups: one dict of ``django.conf.settings`` (``ARTIFACTS``, ``REGISTRY``,
``WEBHOOKS``) read as a frozen dataclass.

config/settings.py is the one place each default is written, each environment variable read
and each value checked; the app that reads a group declares a dataclass whose fields are the
group's keys in lower case and whose annotations are their types, and reads it through a
``SettingsGroup``, never by subscripts (docs/decisions/0008). The dataclass holds no defaults:
a missing key, or a value of another type, stops the read with ``ImproperlyConfigured``.

The parsed object is kept for as long as the setting is the same dict: ``override_settings``
and pytest-django's ``settings`` fixture replace the dict, and the next read parses the new one.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

# Takes the raw value of one key and answers the field's value. A value it cannot take raises
# TypeError or ValueError saying what the value must be ("a boolean"), or ImproperlyConfigured
# with a message of its own.
Converter = Callable[[Any], Any]


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("a boolean")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError("an integer")


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError("a number")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


_SCALARS: dict[object, Converter] = {bool: _boolean, int: _integer, float: _number, str: _text}


def _sequence_of(item: Converter) -> Converter:
    def convert(values: Any) -> tuple[Any, ...]:
        # Only a list or a tuple: a string is a sequence too, and one path must not become a
        # tuple of its characters.
        if not isinstance(values, list | tuple):
            raise TypeError("a list")
        try:
            return tuple(item(value) for value in values)
        except TypeError as exc:
            raise TypeError(f"a list whose every item is {exc}") from None

    return convert


_strings = _sequence_of(_text)


def strings(values: Any) -> tuple[str, ...]:
    """A list or tuple of strings, as a tuple: the first step of a converter that parses them."""
    return tuple(_strings(values))


def _one_of(choices: tuple[Any, ...]) -> Converter:
    def convert(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"one of {', '.join(map(str, choices))}")
        return value

    return convert


def _converter(hint: object) -> Converter:
    """The converter for a field annotated ``bool``, ``int``, ``float``, ``str``,
    ``Literal[...]`` (one of its values) or ``tuple[<a scalar>, ...]`` (from a list or a tuple)."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return _one_of(arguments)
    if typing.get_origin(hint) is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        if arguments[0] in _SCALARS:
            return _sequence_of(_SCALARS[arguments[0]])
    raise TypeError(f"no converter for {hint!r}: give one in `convert`")


class SettingsGroup(Generic[T]):
    """``settings.<name>`` read as a ``schema`` (a frozen dataclass): ``group.get()``.

    ``convert`` maps a field name to its converter, for fields that are not plain values (they
    parse, normalise or check more than the type). Several groups may read parts of one dict:
    each checks only the keys of its own fields.
    """

    def __init__(
        self, name: str, schema: type[T], *, convert: Mapping[str, Converter] | None = None
    ) -> None:
        # Frozen: every reader shares the one parsed object.
        params = getattr(schema, "__dataclass_params__", None)
        if not dataclasses.is_dataclass(schema) or params is None or not params.frozen:
            raise TypeError(f"{schema!r} is not a frozen dataclass")
        hints = typing.get_type_hints(schema)
        names = [field.name for field in dataclasses.fields(schema)]
        convert = dict(convert or {})
        unknown = set(convert) - set(names)
        if unknown:
            raise TypeError(f"{schema.__name__} has no field {', '.join(sorted(unknown))}")
        self.name = name
        self.schema = schema
        self._converters: dict[str, Converter] = {
            field: convert.get(field) or _converter(hints[field]) for field in names
        }
        self._cache: tuple[object, T] | None = None

    def get(self) -> T:
        """The current settings, parsed again only when ``settings.<name>`` is another object."""
        raw = getattr(settings, self.name)
        cached = self._cache
        if cached is not None and cached[0] is raw:
            return cached[1]
        parsed = self.parse(raw)
        # One assignment: a thread reading meanwhile sees the old pair or the new one.
        self._cache = (raw, parsed)
        return parsed

    def parse(self, raw: Mapping[str, Any]) -> T:
        missing = [field.upper() for field in self._converters if field.upper() not in raw]
        if missing:
            raise ImproperlyConfigured(
                f"settings.{self.name} lacks {', '.join(missing)} "
                "(config/settings.py sets every key)."
            )
        values: dict[str, Any] = {}
        for field, convert in self._converters.items():
            key = field.upper()
            try:
                values[field] = convert(raw[key])
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(
                    f"settings.{self.name}[{key!r}] is {raw[key]!r}, which is not {exc}."
                ) from None
        return self.schema(**values)
