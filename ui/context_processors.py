"""What every page's navigation shows: the number of requests waiting for the signed-in user
(docs/ui.md). Read only when a page shows it (the admin's pages do not), with the same
selector as the "Waiting for me" page, so the two always agree."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from ui import selectors as ui_selectors


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "waiting_count": SimpleLazyObject(
            lambda: len(ui_selectors.transition_requests_waiting_for(actor=user))
        )
    }
