"""The signature verification snippets of the README, extracted and run as they are written,
so the tests prove that what receivers are told to do verifies what the registry sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_function(name: str) -> Callable[..., Any]:
    """The ``def <name>`` of the first python block in the README that defines it."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        if f"def {name}(" in block:
            namespace: dict[str, Any] = {}
            exec(compile(block, f"README.md:{name}", "exec"), namespace)  # noqa: S102
            return namespace[name]
    raise AssertionError(f"README.md has no python block defining {name}()")
