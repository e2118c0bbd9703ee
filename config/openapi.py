"""The registry's OpenAPI conventions: the schema class and the authentication schemes.

Kept apart from ``config/schema.py`` (which imports drf-spectacular's views): DRF imports the
schema class while those views are being defined.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The one error envelope (``config/exception_handlers.py``)."""

    error_code = serializers.CharField()
    message = serializers.CharField()


# The refusals any operation can give: bad input, no or bad credentials, no right, no such thing
# (or no such route), a rate limit, a database outage. Each in the envelope.
ERROR_RESPONSES = {
    "400": "Invalid input (INVALID_PARAMETER_VALUE, BAD_REQUEST, RESOURCE_ALREADY_EXISTS).",
    "401": "No credentials, or invalid ones (UNAUTHENTICATED).",
    "403": "The caller may not do this (PERMISSION_DENIED).",
    "404": "No such object or route (RESOURCE_DOES_NOT_EXIST, ENDPOINT_NOT_FOUND).",
    "429": "Over a rate limit, such as API tokens created per user (REQUEST_LIMIT_EXCEEDED).",
    "503": "The database cannot be reached for a moment; retry after the `Retry-After` seconds "
    "(TEMPORARILY_UNAVAILABLE).",
}


class RegistryAutoSchema(AutoSchema):
    """drf-spectacular's schema with the registry's conventions.

    - Nested ``InputSerializer``s are named after their view (``CommentCreateApiInput``), so
      the many ``InputSerializer`` classes do not collapse into one component.
    - Every success is exactly 200, DELETE included: the ``mlflow`` client treats anything else
      as an error, and the body is ``{}``.
    - Every operation documents its refusals in the ``Error`` envelope.
    """

    def get_serializer_name(self, serializer: serializers.Serializer, direction: Direction) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "")
        return super().get_serializer_name(serializer, direction)

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if self.method == "DELETE" and "204" in responses:
            del responses["204"]
            responses["200"] = self._get_response_for_code(
                self.get_response_serializers(), "200", direction=direction
            )
        for status, description in ERROR_RESPONSES.items():
            responses.setdefault(
                status,
                self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=description),
                    status,
                    direction=direction,
                ),
            )
        return responses


class BasicAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.RegistryBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "User name and password, or user name and an API token.",
        }


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API token."}
