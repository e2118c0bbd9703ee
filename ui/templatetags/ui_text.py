"""Template filters of the UI's text."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ui.markdown import summary

register = template.Library()

_JOINERS = re.compile(r"([_./(=,])")


@register.filter
def breakable(value: object) -> SafeString:
    """The text, escaped, with a line-break opportunity after each ``_ . / ( = ,``, so
    a long identifier (``MODEL_VERSION_TRANSITIONED_STAGE``) wraps between its parts rather
    than inside a word on a narrow screen."""
    return mark_safe(_JOINERS.sub(r"\1<wbr>", str(escape(value))))  # noqa: S308


_CHUNK = 8


@register.filter
def chunked(value: object) -> SafeString:
    """As :func:`breakable`, with a line-break opportunity every 8 characters of a part too,
    for digests and addresses (``sha256:d87319b9…``) in table cells: they wrap between
    chunks, never inside one (the broken-word check of tests/ui/browser.py looks at each
    chunk on its own)."""
    parts = _JOINERS.split(str(value))
    pieces = []
    for part in parts:
        if _JOINERS.fullmatch(part):
            pieces.append(escape(part) + "<wbr>")
        else:
            pieces.append(
                "<wbr>".join(escape(part[i : i + _CHUNK]) for i in range(0, len(part), _CHUNK))
            )
    return mark_safe("".join(pieces))  # noqa: S308


@register.filter
def description_summary(value: object) -> str:
    """A Markdown description's first paragraph as plain text, for lists (ui/markdown.py)."""
    return summary(str(value or ""))
