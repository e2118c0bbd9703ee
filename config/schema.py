"""OpenAPI generation hooks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

# The same views answer under these prefixes; the schema documents /api/2.0/mlflow/ once.
_ALIAS_PREFIXES = ("/ajax-api/", "/api/2.0/preview/")


def exclude_alias_prefixes(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(_ALIAS_PREFIXES)]


class SwaggerView(SpectacularSwaggerSplitView):
    """The API reference page. The split view serves its start-up script as a file, so no
    inline script is needed; drf-spectacular's template still has one small inline <style>,
    hence ``style-src 'unsafe-inline'`` on this page only (config/middleware.py)."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'"
        )
        return response
