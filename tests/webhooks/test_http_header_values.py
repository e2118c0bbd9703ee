"""Which header values the outbound client sends as they are (``webhooks.http.is_header_value``):
Latin-1 without control characters, the tab excepted. The edges of each allowed range."""

from __future__ import annotations

import pytest

from webhooks import http


@pytest.mark.parametrize(
    "value",
    ["", "Bearer abc", "\t", " ", "~", "a\tb", "\xa0", "caf\xe9", "\xff", "x" * 5000],
)
def test_sent_as_is(value: str) -> None:
    assert http.is_header_value(value)


@pytest.mark.parametrize(
    "value",
    [
        "a\rb",
        "a\nb",
        "a\r\nX-Injected: 1",
        "\x00",
        "\x08",
        "\x0b",
        "\x1f",
        "\x7f",
        "\x80",
        "\x9f",
        "\u0100",
        "\u2028",
        "snow \u2603",
        "\U0001f600",
        "ok" * 100 + "\n",
    ],
)
def test_refused(value: str) -> None:
    assert not http.is_header_value(value)


def test_post_refuses_a_header_value_it_cannot_send() -> None:
    result = http.post("http://127.0.0.1:1/", body=b"{}", headers={"Authorization": "a\nb"})
    assert result.status is None
    assert not result.retryable
    assert "Authorization header" in result.error
    assert "a\nb" not in result.error
