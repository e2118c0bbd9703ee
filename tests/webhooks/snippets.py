"""The signature verification snippets of docs/webhooks.md, extracted and run as they are
written, so the tests prove that what receivers are told to do verifies what the registry sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

WEBHOOKS_DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def readme_function(name: str) -> Callable[..., Any]:
    """The ``def <name>`` of the first python block in docs/webhooks.md that defines it."""
    text = WEBHOOKS_DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if f"def {name}(" in block:
            namespace: dict[str, Any] = {}
            exec(compile(block, f"docs/webhooks.md:{name}", "exec"), namespace)  # noqa: S102
            return namespace[name]
    raise AssertionError(f"docs/webhooks.md has no python block defining {name}()")
