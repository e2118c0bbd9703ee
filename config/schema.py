"""OpenAPI generation hooks."""

from __future__ import annotations

from typing import Any

# The same views answer under these prefixes; the schema documents /api/2.0/mlflow/ once.
_ALIAS_PREFIXES = ("/ajax-api/", "/api/2.0/preview/")


def exclude_alias_prefixes(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(_ALIAS_PREFIXES)]
