"""Keyset paging of the API's lists: ``max_results``, opaque page tokens and the page itself.

Every paged list of the API goes through :func:`paginate`, so ``max_results`` and page tokens
mean the same everywhere. A token is base64 of JSON ``{"offset": N}`` (the reference server's
format), optionally with the position of the previous page's last row; see :func:`paginate`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import operator
import re
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.db.models import Q, QuerySet

from kernel.database import is_statement_timeout, timeout_message
from kernel.errors import RegistryError
from kernel.text import check_text, clip

#: The largest offset a page token may carry (the largest integer JSON keeps exactly).
MAX_PAGE_OFFSET: Final = 2**53 - 1
# A position holds a name of up to 256 characters (1,024 bytes of UTF-8) and a datetime.
_MAX_PAGE_TOKEN_LENGTH: Final = 4096


def encode_page_token(
    offset: int, *, ordering: Sequence[str] | None = None, after: Sequence[Any] | None = None
) -> str:
    """The opaque ``next_page_token`` for a page starting at ``offset``: base64 of JSON
    ``{"offset": N}``, the reference server's format.

    With ``ordering`` (the ``order_by()`` arguments of the list) and ``after`` (the values of
    those fields in the last row of the page before), the token also carries that position, so
    the next page is read from the index after it instead of counting ``offset`` rows again
    (see :func:`paginate`). Datetimes are written in ISO 8601.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"A page offset must be a non-negative integer, not {offset!r}")
    payload: dict[str, Any] = {"offset": offset}
    if ordering is not None and after is not None:
        if len(ordering) != len(after):
            raise ValueError("A page position needs one value per ordering field")
        payload["order"] = list(ordering)
        payload["after"] = [
            value.isoformat() if isinstance(value, dt.datetime) else value for value in after
        ]
    text = json.dumps(payload, ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decode_page_payload(token: str | None) -> dict[str, Any]:
    """The JSON object a ``page_token`` carries, its ``offset`` checked; ``{"offset": 0}`` for
    the first page."""
    if token is None:
        return {"offset": 0}
    if not isinstance(token, str):
        raise RegistryError.invalid("Invalid page token, could not base64-decode")
    token = token.strip()
    if not token:
        return {"offset": 0}
    if len(token) > _MAX_PAGE_TOKEN_LENGTH:
        raise RegistryError.invalid("Invalid page token, could not base64-decode (too long)")
    # URL-safe letters, and a '+' that a hand-written URL turned into a space.
    token = token.replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RegistryError.invalid("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise RegistryError.invalid(
            f"Invalid page token, decoded value={clip(repr(raw))}"
        ) from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if (
        isinstance(offset, bool)
        or not isinstance(offset, int)
        or not 0 <= offset <= MAX_PAGE_OFFSET
    ):
        raise RegistryError.invalid(f"Invalid page token, parsed value={clip(repr(parsed))}")
    return parsed


def decode_page_token(token: str | None) -> int:
    """The offset a ``page_token`` carries; ``None`` or an empty token means the first page.

    Accepts standard or URL-safe base64, with or without padding. Anything else — not base64,
    not JSON, not an object with a non-negative integer ``offset`` — is refused with
    ``INVALID_PARAMETER_VALUE``.
    """
    return _decode_page_payload(token)["offset"]


def _sort_value(row: Any, field: str) -> Any:
    """The value of an ordering field (``"registered_model__name"``, ``"pk"``) in a row."""
    value = row
    for part in field.split("__"):
        value = getattr(value, part)
    return value


def _model_field(model: Any, path: str) -> Any:
    """The model field at the end of an ordering field's path."""
    field = None
    for part in path.split("__"):
        field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        model = field.related_model or model
    return field


def _position_after(
    queryset: QuerySet[Any], ordering: Sequence[str], payload: Mapping[str, Any]
) -> Q | None:
    """The rows after the position a token carries, for the same ``ordering``; ``None`` when the
    token carries none or one for another order (it is then read as a plain offset)."""
    after = payload.get("after")
    if payload.get("order") != list(ordering) or after is None:
        return None
    if not isinstance(after, list) or len(after) != len(ordering):
        raise RegistryError.invalid("Invalid page token, parsed value=" + clip(repr(payload)))
    values = []
    for term, raw in zip(ordering, after, strict=True):
        field = _model_field(queryset.model, term.lstrip("-"))
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise RegistryError.invalid("Invalid page token, parsed value=" + clip(repr(payload)))
        try:
            value = field.to_python(raw)
            field.get_prep_value(value)
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise RegistryError.invalid(
                "Invalid page token, parsed value=" + clip(repr(payload))
            ) from None
        if isinstance(value, str):
            check_text(value, "page token")
        values.append(value)
    # (a < x) OR (a = x AND b > y) OR ..., for each field's direction; the first field's bound
    # is stated on its own as well, so the database can start the index scan there.
    later = []
    equal = Q()
    for term, value in zip(ordering, values, strict=True):
        name = term.lstrip("-")
        later.append(equal & Q(**{f"{name}__{'lt' if term.startswith('-') else 'gt'}": value}))
        equal &= Q(**{name: value})
    first = ordering[0]
    bound = Q(**{f"{first.lstrip('-')}__{'lte' if first.startswith('-') else 'gte'}": values[0]})
    return bound & reduce(operator.or_, later)


def check_max_results(value: object, *, default: int, maximum: int) -> int:
    """Validate a ``max_results`` parameter: an int or a numeric string from 1 to ``maximum``.

    ``None`` or a blank string gives ``default``. A float with an integral value (a JSON
    ``10.0``) is accepted; booleans, fractions and other text are not.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
        number = int(value.strip())
    shown = f"'{clip(value)}'" if isinstance(value, str) else clip(str(value))
    if number is None or number < 1:
        raise RegistryError.invalid(
            "Invalid value for max_results. It must be a positive integer no greater than "
            f"{maximum}, but got {shown}"
        )
    if number > maximum:
        raise RegistryError.invalid(
            "Invalid value for request parameter max_results. It must be at most "
            f"{maximum}, but got value {shown}"
        )
    return number


def paginate(
    queryset: QuerySet[Any],
    *,
    max_results: object,
    page_token: str | None,
    default: int,
    maximum: int,
    keyset: Sequence[str] | None = None,
) -> tuple[list[Any], str]:
    """One page of an ordered ``queryset`` and the token of the next page ("" on the last).

    Every paged list of the API goes through here, so ``max_results`` and page tokens mean the
    same everywhere. Reads one row past the page to know whether another page exists.

    With ``keyset`` (the queryset's ``order_by()`` arguments, ending in a unique field) the next
    token also carries the sort values of the page's last row, and a page asked for with such a
    token starts after that row (``WHERE (sort key) > (last row's)``) rather than skipping
    ``offset`` rows: the cost of a page no longer grows with its depth, and rows added or
    deleted before the position between two calls no longer shift the pages (nothing is
    repeated or skipped). Tokens with only an offset (older ones, or written for another order)
    are still read as offsets.
    """
    limit = check_max_results(max_results, default=default, maximum=maximum)
    payload = _decode_page_payload(page_token)
    offset = payload["offset"]
    after = _position_after(queryset, keyset, payload) if keyset else None
    try:
        if after is not None:
            rows = list(queryset.filter(after)[: limit + 1])
        else:
            rows = list(queryset[offset : offset + limit + 1])
    except OperationalError as exc:
        if not is_statement_timeout(exc):
            raise
        # What the pattern limits leave of a slow filter (long LIKE patterns against long tag
        # values, many of them): the caller can make it cheaper, so not a 503 to retry.
        raise RegistryError.invalid(
            f"The search took longer than the registry allows ({timeout_message()}) and was "
            "stopped. Narrow the filter (fewer or shorter LIKE / ILIKE patterns, an exact "
            "name or tag value) or ask for fewer results."
        ) from None
    if len(rows) <= limit:
        return rows, ""
    if keyset:
        last = rows[limit - 1]
        position = [_sort_value(last, term.lstrip("-")) for term in keyset]
        return rows[:limit], encode_page_token(offset + limit, ordering=keyset, after=position)
    return rows[:limit], encode_page_token(offset + limit)
