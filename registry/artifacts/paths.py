"""The one check for artifact paths that come from users: URLs, query strings, sources.

A clean path is relative, uses ``/``, and has no empty, ``.`` or ``..`` segment, no backslash
and no control character. Percent-encoded forms (``%2e%2e``, ``%2f``) are decoded once by the
web server before they reach us; a second level of encoding (``%252e``) is refused here, so no
layer below can decode its way out of the tree.

Also where each version's managed copy lives in the store (``version_folder``), which the
artifact services, the registry's selectors and the web UI all name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kernel.errors import RegistryError

if TYPE_CHECKING:
    from registry.models import ModelVersion, RegisteredModel

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_relative_path(value: str, *, what: str = "path", allow_empty: bool = False) -> str:
    """``value`` as a clean relative path (no trailing ``/``), or INVALID_PARAMETER_VALUE."""
    if value == "":
        if allow_empty:
            return ""
        raise RegistryError.invalid(f"The {what} must not be empty.")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise RegistryError.invalid(f"Invalid {what} '{value}': absolute paths are not allowed.")
    if "\\" in value or _CONTROL.search(value) or "%" in value:
        raise RegistryError.invalid(
            f"Invalid {what} '{value}': backslashes, control characters and percent-encoded "
            "characters are not allowed."
        )
    text = value[:-1] if value.endswith("/") else value
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            raise RegistryError.invalid(
                f"Invalid {what} '{value}': '..', '.' and empty segments are not allowed."
            )
    return text


def join(*parts: str) -> str:
    """Join clean relative paths with ``/``, skipping empty parts."""
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def version_folder(model_version: ModelVersion) -> str:
    """Where a version's managed copy lives in the store: ``models/<model id>/<version>``."""
    return f"models/{model_version.registered_model.code}/{model_version.version}"


def model_folder(registered_model: RegisteredModel) -> str:
    return f"models/{registered_model.code}"
