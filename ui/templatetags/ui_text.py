"""Template filters of the UI's text."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_JOINERS = re.compile(r"([_./(=,])")


@register.filter
def breakable(value: object) -> SafeString:
    """The text, escaped, with a line-break opportunity after each ``_ . / ( = ,``, so
    a long identifier (``MODEL_VERSION_TRANSITIONED_STAGE``) wraps between its parts rather
    than inside a word on a narrow screen."""
    return mark_safe(_JOINERS.sub(r"\1<wbr>", str(escape(value))))  # noqa: S308
