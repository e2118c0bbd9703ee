"""What every page of the UI goes through: signed-in users only, and a refusal from a read
shown as a readable error page with the status the API would answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kernel.errors import ErrorCode, RegistryError


def _error_page(request: HttpRequest, exc: RegistryError) -> HttpResponse:
    return render(
        request,
        "ui/error.html",
        {"error": exc, "title": _error_title(exc)},
        status=exc.http_status,
    )


def _error_title(exc: RegistryError) -> str:
    return {
        ErrorCode.RESOURCE_DOES_NOT_EXIST: "Not found",
        ErrorCode.PERMISSION_DENIED: "Not allowed",
        ErrorCode.UNAUTHENTICATED: "Sign-in required",
    }.get(exc.code, "Cannot do that")


def ui_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in users only; a refusal from a read becomes a readable error page."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except RegistryError as exc:
            return _error_page(request, exc)

    return wrapped
