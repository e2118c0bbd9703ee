"""``NotFoundPageMiddleware``: an address no route matches gets the UI's own "Page not found"
page, also with ``DJANGO_DEBUG`` on (``make run``), where Django would otherwise show its
technical page listing every route. Without DEBUG, ``handler404`` renders the same template
(``ui/templates/404.html``); API addresses keep their JSON envelope (docs/ui.md, "Forms")."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

# Addresses whose 404 is not a page: the API's envelope, and static files.
NOT_PAGES = ("/api/", "/ajax-api/", "/static/")


class NotFoundPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and request.resolver_match is None  # no route matched (a view's 404 is its own)
            and not request.path.startswith(NOT_PAGES)
        ):
            return render(request, "404.html", {"request_path": request.path}, status=404)
        return response
