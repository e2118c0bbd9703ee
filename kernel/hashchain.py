"""Hash chains over append-only rows (docs/decisions/0017-tamper-evident-trail.md).

Each row carries ``prev_hash``, the ``row_hash`` of the row before it in its chain (64 zeros
for the first), and ``row_hash = sha256(prev_hash || "\\n" || canonical content)``. The canonical
content is a JSON object of a fixed list of fields (the row's *version 1* form: a field added
to a table later is not hashed, so old rows keep their hashes), with sorted keys, no spaces,
ASCII only; datetimes in UTC ISO 8601 with microseconds, UUIDs as strings. Everything here is
a pure function of the values as the database gives them back, so anyone with a copy of the
rows can recompute a chain.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

GENESIS = "0" * 64


def timestamp(value: datetime.datetime) -> str:
    """A datetime's canonical form: UTC, ISO 8601, microseconds, ``Z``."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes have no canonical form")
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def canonical(values: dict[str, Any]) -> bytes:
    """The canonical bytes of a row's hashed fields."""
    return json.dumps(
        _plain(values), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def row_values(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The hashed fields of a model instance (by attribute name: ``actor_id``, not ``actor``)."""
    return {field: getattr(row, field) for field in fields}


def row_hash(prev_hash: str, values: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(values)).hexdigest()


def link(rows: Iterable[Any], fields: Sequence[str], head: str) -> str:
    """Fill ``prev_hash`` and ``row_hash`` of unsaved ``rows``, in order, after ``head`` (the
    chain's last ``row_hash``, or :data:`GENESIS`). Returns the new head."""
    for row in rows:
        row.prev_hash = head
        row.row_hash = head = row_hash(head, row_values(row, fields))
    return head


def first_break(rows: Iterable[Any], fields: Sequence[str]) -> tuple[Any, str] | None:
    """The first row of a chain (in chain order) whose hashes do not follow from the rows
    before it and its own content, with what is wrong; None when the whole chain holds."""
    head = GENESIS
    for row in rows:
        if row.prev_hash != head:
            return row, (
                f"its prev_hash {row.prev_hash or '(empty)'} is not the hash of the row before it "
                f"({head}): a row was removed, inserted or reordered before it"
            )
        expected = row_hash(head, row_values(row, fields))
        if row.row_hash != expected:
            return row, (
                f"its content hashes to {expected}, not the row_hash it carries "
                f"({row.row_hash or '(empty)'}): the row was changed after it was written"
            )
        head = row.row_hash
    return None
