"""Markdown to safe HTML for descriptions: rendered by ``markdown``, then sanitised by ``nh3``.

The sanitiser (ammonia, through ``nh3``) keeps only a fixed set of tags and attributes and
only ``http``, ``https`` and ``mailto`` links, so neither a ``<script>`` nor a ``javascript:``
link can come through.
"""

from __future__ import annotations

import html
import re

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


def render(text: str) -> SafeString:
    """The description as HTML that is safe to put on a page."""
    if not text:
        return mark_safe("")  # noqa: S308 - empty
    body = markdown_lib.markdown(text, extensions=["tables", "fenced_code"])
    cleaned = nh3.clean(
        body,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above


# A bare web address in a comment, not already inside a Markdown link or an autolink: it is
# wrapped as an autolink (``<https://...>``) before rendering, so it becomes clickable.
BARE_URL = re.compile(r"(?<![(<\[\"'=])\bhttps?://[^\s<>()\[\]\"']+")
TRAILING = ".,;:!?"


def _autolink(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(TRAILING)
    return f"<{stripped}>{url[len(stripped) :]}"


def render_comment(text: str) -> SafeString:
    """A comment as safe HTML: Markdown, with bare ``http(s)`` addresses made links, through the
    same sanitiser as descriptions."""
    return render(BARE_URL.sub(_autolink, text))


def summary(text: str, limit: int = 90) -> str:
    """The description's first paragraph as plain text (no Markdown marks, no tags), cut to
    ``limit`` characters with an ellipsis: for lists, where the whole description would not
    fit. The caller escapes it like any text."""
    first = text.strip().split("\n\n", 1)[0]
    plain = html.unescape(nh3.clean(markdown_lib.markdown(first), tags=set()))
    plain = " ".join(plain.split())
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"
