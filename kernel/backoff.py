"""How long to wait before retrying: capped exponential backoff, the one formula of the service.

Webhook deliveries, artifact copies and deletions of artifact folders retry with it, each with
its own base and cap (docs/architecture.md).
"""

from __future__ import annotations

import secrets


def backoff(attempt: int, *, base: float, cap: float, jitter: bool = False) -> float:
    """Seconds before the retry that follows ``attempt`` failures beyond the first
    (``attempt`` 0: ``base``): ``base * 2**attempt``, at most ``cap``.

    With ``jitter``, "equal jitter": half of that, plus a random part of the other half, so
    that the retries of failures that happened together do not all come back together.
    """
    delay = min(cap, base * 2**attempt)
    if jitter:
        return delay / 2 + secrets.SystemRandom().uniform(0, delay / 2)
    return float(delay)
