"""User-supplied text in error messages and in the database."""

from __future__ import annotations

from typing import Final

from kernel.errors import RegistryError

# How much of a user-supplied string is echoed back in an error message.
_SHOWN_CHARS: Final = 200


def clip(text: str) -> str:
    """``text`` cut to a length fit for an error message."""
    if len(text) <= _SHOWN_CHARS:
        return text
    return text[:_SHOWN_CHARS] + "..."


def check_text(text: str, what: str) -> None:
    """Refuse strings no database column can hold (NUL characters, lone surrogates)."""
    if "\x00" in text:
        raise RegistryError.invalid(f"Invalid {what}: it must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RegistryError.invalid(f"Invalid {what}: it is not valid Unicode text.") from None
