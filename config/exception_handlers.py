"""The API's one error envelope: ``{"error_code": "...", "message": "..."}``.

Domain errors (:class:`kernel.errors.RegistryError`) carry their MLflow code. DRF's own
errors are translated here so that every refusal, including a malformed body or a missing
credential, reaches the client in the envelope with the status the MLflow protocol gives it.
A database that cannot be reached (PostgreSQL restarting, a failover, a connection cut) is
answered 503 TEMPORARILY_UNAVAILABLE with ``Retry-After``, which both clients retry; nothing was
written, since the transaction that met the error is rolled back. A body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is answered 413, input nested too deeply to walk 400 (never a
500 for what the client sent). Unexpected exceptions are logged and answered as INTERNAL_ERROR
in the same envelope.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from config.parsers import MAX_JSON_DEPTH
from kernel.database import DATABASE_UNAVAILABLE, is_statement_timeout, timeout_message
from kernel.errors import ErrorCode, RegistryError

logger = logging.getLogger(__name__)


def _first_message(detail: Any, field: str | None = None) -> tuple[str | None, str, str]:
    """The first (field, message, code) of a DRF ValidationError's nested details."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = (
                field if key == "non_field_errors" else key if field is None else f"{field}.{key}"
            )
            return _first_message(value, name)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], field)
    return field, str(detail), getattr(detail, "code", "invalid")


def _validation_message(exc: exceptions.ValidationError) -> str:
    field, message, code = _first_message(exc.detail)
    if field is None or field == "non_field_errors":
        return f"Invalid request: {message}"
    if code in {"required", "null", "blank"}:
        return f"Missing value for required parameter '{field}'."
    return f"Invalid value for parameter '{field}': {message}"


def _envelope(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    response = Response({"error_code": code, "message": message}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


#: The code of a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413). Not one of the codes MLflow maps to
#: a status itself; its clients read the code and the message from the body.
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"

#: Seconds a client should wait before it tries again after a 503.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The registry's database is unavailable; try again in a few seconds."


def database_unavailable(exc: Exception) -> None:
    if is_statement_timeout(exc):
        logger.warning("Statement cancelled after %s: %s", timeout_message(), str(exc).strip())
        return
    logger.warning("Database unavailable: %s: %s", type(exc).__name__, str(exc).strip())


def unavailable_message(exc: Exception) -> str:
    """What a 503 for ``exc`` tells the user: a statement cancelled for running past the bound
    (a slow query, or one that waited on a lock), or a database that cannot be reached."""
    if is_statement_timeout(exc):
        return (
            "A database statement of this request ran longer than the registry allows "
            f"({timeout_message()}) and was cancelled; nothing was changed. Try again in a few "
            "seconds."
        )
    return UNAVAILABLE_MESSAGE


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, RegistryError):
        set_rollback()
        return _envelope(exc.code, exc.message, exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        # Raised by request.body before any parsing: the body was not read past the limit.
        set_rollback()
        return _envelope(
            RESOURCE_LIMIT_EXCEEDED,
            f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
            "an API request may carry. Send large values as artifact files "
            "(PUT /api/2.0/mlflow-artifacts/artifacts/uploads/...) instead.",
            413,
        )
    if isinstance(exc, SuspiciousOperation):
        # Too many query or form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS) and the like: input
        # Django refuses to read, answered as the client error it is, not a 500.
        set_rollback()
        logger.warning("Refused request: %s: %s", type(exc).__name__, exc)
        return _envelope(ErrorCode.INVALID_PARAMETER_VALUE, f"Invalid request: {exc}", 400)
    if isinstance(exc, RecursionError):
        # Input nested deeper than the code that walks it can follow (config/parsers.py bounds
        # JSON bodies; this is the net for anything else built from user input).
        set_rollback()
        logger.warning("Refused request: input nested too deeply", exc_info=True)
        return _envelope(
            ErrorCode.INVALID_PARAMETER_VALUE,
            f"The request nests values too deeply to be processed; JSON bodies may nest at "
            f"most {MAX_JSON_DEPTH} levels.",
            400,
        )
    if isinstance(exc, DATABASE_UNAVAILABLE):
        set_rollback()
        database_unavailable(exc)
        return _envelope(
            ErrorCode.TEMPORARILY_UNAVAILABLE,
            unavailable_message(exc),
            503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    response = exception_handler(exc, context)  # sets WWW-Authenticate and rolls back
    if response is None:
        set_rollback()
        logger.exception("Unhandled error in %s", context.get("view"))
        return _envelope(ErrorCode.INTERNAL_ERROR, "An internal error occurred.", 500)

    headers = {
        name: value
        for name, value in response.items()
        if name in {"WWW-Authenticate", "Allow", "Retry-After"}
    }
    if isinstance(exc, exceptions.ValidationError):
        code, message = ErrorCode.INVALID_PARAMETER_VALUE, _validation_message(exc)
    elif isinstance(exc, exceptions.ParseError):
        code, message = ErrorCode.BAD_REQUEST, f"Malformed request body: {exc.detail}"
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        code, message = (
            ErrorCode.BAD_REQUEST,
            f"{exc.detail} Send the request body as application/json.",
        )
        response.status_code = 400
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code, message = ErrorCode.UNAUTHENTICATED, str(exc.detail)
        response.status_code = 401
    elif isinstance(exc, exceptions.PermissionDenied | DjangoPermissionDenied):
        code, message = ErrorCode.PERMISSION_DENIED, str(getattr(exc, "detail", exc))
    elif isinstance(exc, exceptions.NotFound | Http404):
        code, message = ErrorCode.ENDPOINT_NOT_FOUND, "Not found."
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code, message = ErrorCode.BAD_REQUEST, str(exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        code, message = ErrorCode.REQUEST_LIMIT_EXCEEDED, str(exc.detail)
    else:
        code, message = ErrorCode.BAD_REQUEST, str(getattr(exc, "detail", exc))
    return _envelope(code, message, response.status_code, headers)


_API_PREFIXES = ("/api/", "/ajax-api/")


# MLflow's tracking API (runs, experiments, logged models, traces, ...) under the prefixes the
# clients use: a client whose MLFLOW_TRACKING_URI names this registry calls these first.
_TRACKING_ROUTE = re.compile(
    r"^/(?:ajax-)?api/[23]\.0/(?:preview/)?mlflow/"
    r"(?:runs|experiments|metrics|logged-models|traces|datasets|scorers|artifacts)(?:/|$)"
)


def _tracking_message(request: HttpRequest) -> str:
    registry = request.build_absolute_uri("/").rstrip("/")
    return (
        f"No API endpoint at {request.path}: this server is a model registry, not an MLflow "
        "tracking server (runs, experiments, metrics and logged models live there). Point "
        "MLFLOW_TRACKING_URI at your MLflow tracking server and MLFLOW_REGISTRY_URI at this "
        f"registry ({registry}), or call mlflow.set_tracking_uri(<tracking server>) and "
        f"mlflow.set_registry_uri('{registry}')."
    )


def api_aware_404(request: HttpRequest, exception: Exception | None = None) -> Any:
    """Unknown API routes answer in the envelope, tracking routes with how to point the client
    at a tracking server; the rest gets Django's page."""
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse(
            {
                "error_code": ErrorCode.ENDPOINT_NOT_FOUND,
                "message": _tracking_message(request)
                if _TRACKING_ROUTE.match(request.path)
                else f"No API endpoint at {request.path}.",
            },
            status=404,
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_aware_500(request: HttpRequest) -> Any:
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse(
            {"error_code": ErrorCode.INTERNAL_ERROR, "message": "An internal error occurred."},
            status=500,
        )
    from django.views.defaults import server_error

    return server_error(request)


def unavailable_response(request: HttpRequest, exc: Exception | None = None) -> HttpResponse:
    """The 503 for a request that met an unreachable database outside DRF (web UI, admin)."""
    message = UNAVAILABLE_MESSAGE if exc is None else unavailable_message(exc)
    if request.path.startswith(_API_PREFIXES):
        response: HttpResponse = JsonResponse(
            {"error_code": ErrorCode.TEMPORARILY_UNAVAILABLE, "message": message},
            status=503,
        )
    else:
        response = HttpResponse(
            "<!doctype html><title>Temporarily unavailable</title>"
            "<h1>Temporarily unavailable</h1>"
            f"<p>{escape(message)}</p>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
