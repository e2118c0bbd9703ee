"""What every API view of the service builds on: the base view, the generic fields and the
paged list.

Each view parses its input with a nested ``InputSerializer`` (shapes and types only) through
:meth:`RegistryApi.input`, calls one service or selector, and renders with output serializers;
errors become ``{"error_code", "message"}`` in the exception handler.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.errors import RegistryError
from kernel.paging import paginate

EMPTY = inline_serializer(name="Empty", fields={})


# --- Fields and base view ---------------------------------------------------------------------


def milliseconds(value: Any) -> int:
    return int(value.timestamp() * 1000)


@extend_schema_field(OpenApiTypes.INT64)
class MillisecondsField(serializers.Field):
    """A datetime as int64 milliseconds since the Unix epoch."""

    def to_representation(self, value: Any) -> int:
        return milliseconds(value)


class DirectRepresentation(serializers.Serializer):
    """A serializer whose declared fields are rendered by ``represent`` in plain Python.

    The declared fields stay what the OpenAPI schema documents; rendering them through DRF's
    generic field machinery (an attribute walk and a ``to_representation`` call per field)
    cost more than the database on the hot reads (docs/performance.md). Fields a subclass
    declares on top are rendered the usual way. ``tests/registry/apis/test_representation.py``
    checks that each ``represent`` gives exactly the declared fields, as DRF would render them.
    """

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        raise NotImplementedError

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = self.represent(instance)
        for field in self.fields.values():
            name = field.field_name  # set when the serializer binds its fields
            if not field.write_only and name is not None and name not in data:
                attribute = field.get_attribute(instance)
                data[name] = None if attribute is None else field.to_representation(attribute)
        return data


def _reject_nul_characters(value: Any) -> None:
    """NUL cannot be stored in PostgreSQL text; refuse it at the edge with a clear message."""
    if isinstance(value, str):
        if "\x00" in value:
            raise RegistryError.invalid("Parameters must not contain NUL (\\x00) characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul_characters(key)
            _reject_nul_characters(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul_characters(item)


class RegistryApi(APIView):
    """Reads the input from the query string on GET and from the JSON body otherwise.

    DELETE takes either: the ``mlflow`` client sends a JSON body, ``databricks-sdk`` sends
    the arguments in the query string and no body.
    """

    InputSerializer: type[serializers.Serializer]

    def input(
        self, request: Request, serializer_class: type[serializers.Serializer] | None = None
    ) -> dict[str, Any]:
        from_query = request.method == "GET" or (
            request.method == "DELETE" and not request.data and request.query_params
        )
        data = request.query_params if from_query else request.data
        _reject_nul_characters(dict(request.query_params.lists()) if from_query else data)
        serializer = (serializer_class or self.InputSerializer)(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


# --- Paged lists ------------------------------------------------------------------------------


class PageInputSerializer(serializers.Serializer):
    """The paging parameters every paged list takes (a list's own filters come on top)."""

    max_results = serializers.CharField(required=False)
    page_token = serializers.CharField(required=False, allow_blank=True)


def page_schema(
    name: str,
    result_key: str,
    serializer: serializers.Serializer,
    *,
    parameters: type[serializers.Serializer] = PageInputSerializer,
) -> Any:
    """The OpenAPI description of a paged list's GET: its parameters, and a response named
    ``name`` with the page under ``result_key`` and the optional ``next_page_token``."""
    return extend_schema(
        parameters=[parameters],
        responses=inline_serializer(
            name=name,
            fields={
                result_key: serializer,
                "next_page_token": serializers.CharField(required=False),
            },
        ),
    )


def page_body(
    result_key: str,
    rows: list[Any],
    serializer_class: type[serializers.Serializer],
    next_token: str,
) -> dict[str, Any]:
    """A page under ``result_key``, and the next page's token unless this is the last page."""
    body: dict[str, Any] = {result_key: serializer_class(rows, many=True).data}
    if next_token:
        body["next_page_token"] = next_token  # absent on the last page: the client loops
    return body


def paged_response(
    queryset: QuerySet[Any],
    data: dict[str, Any],
    *,
    result_key: str,
    serializer_class: type[serializers.Serializer],
    default: int,
    maximum: int,
) -> Response:
    """One page of an ordered ``queryset``, as ``data``'s ``max_results`` and ``page_token``
    (a :class:`PageInputSerializer`'s fields) ask, rendered by :func:`page_body`."""
    rows, next_token = paginate(
        queryset,
        max_results=data.get("max_results"),
        page_token=data.get("page_token"),
        default=default,
        maximum=maximum,
    )
    return Response(page_body(result_key, rows, serializer_class, next_token))
