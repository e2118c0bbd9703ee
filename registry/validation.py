"""Input rules of the MLflow protocol: names, tag keys and values, aliases, stages, versions.

Each function returns the cleaned value or raises ``RegistryError`` (INVALID_PARAMETER_VALUE)
with the message the reference server uses, so clients that match on messages keep working.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from kernel.errors import RegistryError
from registry.models import (
    ALIAS_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    MODEL_ID_MAX_LENGTH,
    NAME_MAX_LENGTH,
    RUN_ID_MAX_LENGTH,
    RUN_LINK_MAX_LENGTH,
    SOURCE_MAX_LENGTH,
    TAG_KEY_MAX_LENGTH,
    TAG_VALUE_MAX_LENGTH,
    Stage,
)

_TAG_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_STAGES_BY_LOWER = {stage.lower(): stage for stage in Stage.values}

ACTIVE_STAGES = (Stage.STAGING, Stage.PRODUCTION)


def _is_path_stable(value: str) -> bool:
    return (
        posixpath.normpath(value) == value
        and value != "."
        and not value.startswith("..")
        and not value.startswith("/")
    )


def require_string(value: Any, field: str) -> str:
    """A required string parameter: present, a string, not blank."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        raise RegistryError.invalid(f"Missing value for required parameter '{field}'.")
    if not isinstance(value, str):
        raise RegistryError.invalid(f"Parameter '{field}' must be a string.")
    return value


def bounded_text(value: Any, field: str, max_length: int) -> str:
    """An optional free-text parameter: absent means empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RegistryError.invalid(f"Parameter '{field}' must be a string.")
    if len(value) > max_length:
        raise RegistryError.invalid(
            f"Parameter '{field}' is {len(value)} characters long; the limit is {max_length}."
        )
    if "\x00" in value:
        raise RegistryError.invalid(f"Parameter '{field}' must not contain NUL characters.")
    return value


def model_name(value: Any, field: str = "name") -> str:
    name = require_string(value, field)
    if len(name) > NAME_MAX_LENGTH:
        raise RegistryError.invalid(
            f"Registered model name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}."
        )
    if "/" in name or ":" in name:
        raise RegistryError.invalid(
            f"Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )
    if "\x00" in name or not _is_path_stable(name):
        raise RegistryError.invalid(f"Invalid model name '{name}'.")
    return name


def tag_key(value: Any) -> str:
    key = require_string(value, "key")
    if len(key) > TAG_KEY_MAX_LENGTH:
        raise RegistryError.invalid(
            f"Tag key '{key[:40]}...' is {len(key)} characters long; the limit is "
            f"{TAG_KEY_MAX_LENGTH}."
        )
    if not _TAG_KEY_RE.match(key):
        raise RegistryError.invalid(
            f"Invalid tag key '{key}'. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    if not _is_path_stable(key):
        raise RegistryError.invalid(f"Invalid tag key '{key}'.")
    return key


def tag_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RegistryError.invalid("Parameter 'value' must be a string.")
    text = str(value)
    if len(text) > TAG_VALUE_MAX_LENGTH:
        raise RegistryError.invalid(
            f"Tag value is {len(text)} characters long; the limit is {TAG_VALUE_MAX_LENGTH}."
        )
    if "\x00" in text:
        raise RegistryError.invalid("Tag values must not contain NUL characters.")
    return text


# Version tags under this prefix stay reserved although the registry writes none any more (the
# artifact digest moved from the tag ``registry.artifacts.digest`` to the version's
# ``artifact_digest``): a deployment script that still reads the old tag must never find one
# that a user wrote.
RESERVED_VERSION_TAG_PREFIX = "registry."

# Letters of other scripts (and Latin letters outside ASCII) that look like the characters of
# ``registry.``, each mapped to the ASCII character it imitates: the entries of Unicode's
# confusables table (UTS #39) for these characters that a tag key can hold (letters and
# digits; the key's character rules refuse symbols, marks and invisible characters). Accented
# letters need no entry: their accents are dropped first. With the rule of
# :func:`_spells_prefix_with_substitutes`, a letter missing here still cannot stand in for one
# of the prefix's letters next to the others.
_PREFIX_CONFUSABLES = {
    "r": "гᴦⲅꭇɼɽɾʀ",
    "R": "ƦᎡᏒᖇꓣ",
    "e": "еҽꬲᴇ",
    "E": "ΕЕᎬⴹꓰ",
    "g": "ɡցᶃƍɢ",
    "G": "ԌᏀᏳꓖ",
    "i": "іıɩιӏꙇꭵɪ",
    "I": "ΙІӀⵏꓲᛁ",
    "s": "ѕꜱƽჽ",
    "S": "ꓢЅՏᏚᏕ",
    "t": "τтᴛ",
    "T": "ΤТᎢꓔⲦ",
    "y": "уүγʏỿყɣꭚ",
    "Y": "ΥҮᎩꓬⲨ",
    ".": "ꓸ٠۰",
}
_CONFUSABLE_TO_ASCII = {
    look_alike: ascii_char
    for ascii_char, look_alikes in _PREFIX_CONFUSABLES.items()
    for look_alike in look_alikes
}


def _folded(text: str) -> str:
    """Unicode's caseless form (NFKC, case folded, NFKC again), without surrounding spaces:
    ``Registry.``, `` registry.`` and fullwidth ``ｒｅｇｉｓｔｒｙ.`` all become ``registry.``."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).strip()


def _skeleton(text: str) -> str:
    """What ``text`` looks like, in the spirit of UTS #39's skeleton: compatibility forms
    decomposed, accents dropped, look-alikes of the prefix's characters replaced by the ASCII
    they imitate, then folded."""
    bare = "".join(
        _CONFUSABLE_TO_ASCII.get(char, char)
        for char in unicodedata.normalize("NFKD", text)
        if not unicodedata.category(char).startswith("M")
    )
    return _folded(bare)


def _spells_prefix_with_substitutes(folded: str, prefix: str) -> bool:
    """The key begins with the prefix in which some characters are replaced by non-ASCII ones
    while at least one of its letters stays in place (``rеgistry.`` with any foreign ``е``),
    whether or not the substitutes are in the table above."""
    head = folded[: len(prefix)]
    if len(head) < len(prefix):
        return False
    pairs = list(zip(head, prefix, strict=True))
    return (
        all(char == expected or not char.isascii() for char, expected in pairs)
        and any(not char.isascii() for char, _ in pairs)
        and any(char == expected and char.isalpha() for char, expected in pairs)
    )


def is_reserved_version_tag_key(key: str) -> bool:
    """Whether ``key`` is, or could be taken for, a key under the reserved prefix: compared
    without regard to case, compatibility forms, surrounding spaces, accents and look-alike
    letters of other scripts (docs/architecture.md, "Artifacts")."""
    prefix = RESERVED_VERSION_TAG_PREFIX
    if any(_skeleton(form).startswith(prefix) for form in (key, _folded(key))):
        return True
    return _spells_prefix_with_substitutes(_skeleton(_folded(key)), prefix)


def version_tag_key_to_delete(value: Any) -> str:
    """A key a user may delete: anything but the registry's own (the exact prefix, no
    surrounding spaces, as the registry writes them). A look-alike is refused when written,
    but one stored before that rule existed can be removed: deleting forges nothing, and
    keeping it would mislead whoever reads the tags."""
    key = tag_key(value)
    if key.startswith(RESERVED_VERSION_TAG_PREFIX) and key == key.strip():
        raise RegistryError.invalid(
            f"Tag key '{key}' is reserved: version tags starting with "
            f"'{RESERVED_VERSION_TAG_PREFIX}' are written by the registry itself."
        )
    return key


def version_tag_key(value: Any) -> str:
    key = tag_key(value)
    if is_reserved_version_tag_key(key):
        raise RegistryError.invalid(
            f"Tag key '{key}' is reserved: version tags starting with "
            f"'{RESERVED_VERSION_TAG_PREFIX}' (in any case or spacing, or spelled with "
            "look-alike letters) are written by the registry itself."
        )
    return key


def tags(value: Any, *, key: Callable[[Any], str] = tag_key) -> list[tuple[str, str]]:
    """A ``tags`` list of ``{"key", "value"}`` objects; a later duplicate key wins. ``key``
    validates each key (``version_tag_key`` for version tags)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryError.invalid("Parameter 'tags' must be a list of {key, value} objects.")
    cleaned: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict):
            raise RegistryError.invalid("Parameter 'tags' must be a list of {key, value} objects.")
        cleaned[key(item.get("key"))] = tag_value(item.get("value"))
    return list(cleaned.items())


def alias_name(value: Any, *, for_set: bool) -> str:
    alias = require_string(value, "alias")
    if len(alias) > ALIAS_MAX_LENGTH:
        raise RegistryError.invalid(
            f"Alias is {len(alias)} characters long; the limit is {ALIAS_MAX_LENGTH}."
        )
    if not _ALIAS_RE.match(alias):
        raise RegistryError.invalid(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    if for_set:
        if alias.lower() == "latest":
            raise RegistryError.invalid("'latest' alias name (case insensitive) is reserved.")
        if _VERSION_ALIAS_RE.match(alias):
            raise RegistryError.invalid(f"Version alias name '{alias}' is reserved.")
    return alias


def version_number(value: Any) -> int:
    """A version, sent as a decimal string (or a number); must be a positive integer."""
    if value is None or value == "":
        raise RegistryError.invalid("Missing value for required parameter 'version'.")
    if isinstance(value, bool):
        raise RegistryError.invalid(f"Parameter 'version' must be an integer, got '{value}'.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 10:
        number = int(value.strip())
    else:
        raise RegistryError.invalid(f"Parameter 'version' must be an integer, got '{value}'.")
    if number < 1 or number > 2**31 - 1:
        raise RegistryError.invalid(f"Parameter 'version' must be a positive integer, got {value}.")
    return number


def stage(value: Any) -> Stage:
    """A stage name, case-insensitive, mapped to its canonical spelling."""
    text = require_string(value, "stage")
    canonical = _STAGES_BY_LOWER.get(text.strip().lower())
    if canonical is None:
        raise RegistryError.invalid(
            f"Invalid Model Version stage: {text}. Value must be one of None, Staging, "
            "Production, Archived."
        )
    return Stage(canonical)


def stages(value: Any) -> list[Stage]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RegistryError.invalid("Parameter 'stages' must be a list of stage names.")
    return [stage(item) for item in value]


def boolean(value: Any, field: str, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise RegistryError.invalid(f"Parameter '{field}' must be a boolean.")


def description(value: Any) -> str:
    return bounded_text(value, "description", DESCRIPTION_MAX_LENGTH)


def source(value: Any) -> str:
    text = require_string(value, "source")
    text = bounded_text(text, "source", SOURCE_MAX_LENGTH)
    if any(part == ".." for part in re.split(r"[/\\]", text)):
        raise RegistryError.invalid(f"Invalid model version source: '{text}'. '..' is not allowed.")
    return text


def run_id(value: Any) -> str:
    return bounded_text(value, "run_id", RUN_ID_MAX_LENGTH)


def model_id(value: Any) -> str:
    return bounded_text(value, "model_id", MODEL_ID_MAX_LENGTH)


def run_link(value: Any) -> str:
    return bounded_text(value, "run_link", RUN_LINK_MAX_LENGTH)
