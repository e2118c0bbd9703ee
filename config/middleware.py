"""Middleware of the service.

``ContentSecurityPolicyMiddleware``: a Content-Security-Policy header on HTML responses (Django
5.2 has none built in).

The policy comes from ``settings.CONTENT_SECURITY_POLICY``. A response that already carries the
header keeps its own (the API reference page sets a slightly wider one, config/schema.py).
JSON, files and artifacts get none: a policy only means something to a document a browser
renders. docs/security.md.

``DatabaseUnavailableMiddleware``: a view outside DRF (web UI, admin) that meets an unreachable
database answers 503 with ``Retry-After`` instead of a 500 page (DRF views get the same from
``config.exception_handlers``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from config.exception_handlers import database_unavailable, unavailable_response
from kernel.database import DATABASE_UNAVAILABLE

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        policy: str = settings.CONTENT_SECURITY_POLICY  # per request: override_settings works
        content_type = response.get("Content-Type", "")
        if policy and HEADER not in response and content_type.startswith("text/html"):
            response[HEADER] = policy
        return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_UNAVAILABLE):
            database_unavailable(exception)
            return unavailable_response(request, exception)
        return None
