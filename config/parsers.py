"""The API's JSON parser: DRF's, with a bound on how deeply a body may nest.

No request of the protocol nests deeper than a few levels (``{"tags": [{"key": ...}]}`` is
three). A body nested hundreds of levels deep makes Python's JSON decoder, and every function
that walks the result afterwards, exceed the interpreter's recursion limit; the
``RecursionError`` would reach the client as a 500. Such a body is refused instead, with 400
``INVALID_PARAMETER_VALUE`` naming the bound.

The body's size is bounded before it is parsed: DRF reads it through ``request.body``, which
refuses more than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (``RequestDataTooBig``, answered 413 in
``config.exception_handlers``). Artifact uploads are not parsed at all: they stream the raw body
to the store (``registry/artifact_apis.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.parsers import JSONParser

from kernel.errors import RegistryError

#: The deepest nesting of objects and arrays a JSON body may have (a scalar body is depth 0,
#: ``{"a": 1}`` depth 1, ``{"a": [{}]}`` depth 3).
MAX_JSON_DEPTH = 32


def _too_deep() -> RegistryError:
    return RegistryError.invalid(
        f"The request body nests JSON objects and arrays more than {MAX_JSON_DEPTH} levels "
        "deep; the API accepts at most that many."
    )


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests objects and arrays deeper than ``limit``.

    Walks with an explicit stack, so the check itself cannot hit the recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class RegistryJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # The decoder gave up on the nesting before the bound below could be checked.
            raise _too_deep() from None
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise _too_deep()
        return data
