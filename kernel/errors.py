"""The one exception type of the domain, carrying an MLflow error code.

Services and selectors raise :class:`RegistryError`; the API's exception handler turns it
into ``{"error_code", "message"}`` with the HTTP status the MLflow protocol prescribes.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    BAD_REQUEST = "BAD_REQUEST"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"


# The statuses of MLflow's ERROR_CODE_TO_HTTP_STATUS for the codes this service raises.
# RESOURCE_ALREADY_EXISTS is 400, not 409: `mlflow.register_model` relies on that code.
HTTP_STATUS = {
    ErrorCode.INVALID_PARAMETER_VALUE: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.RESOURCE_DOES_NOT_EXIST: 404,
    ErrorCode.RESOURCE_ALREADY_EXISTS: 400,
    ErrorCode.ENDPOINT_NOT_FOUND: 404,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.TEMPORARILY_UNAVAILABLE: 503,
    ErrorCode.REQUEST_LIMIT_EXCEEDED: 429,
}


class RegistryError(Exception):
    """A refusal the caller can act on: an MLflow error code and a readable message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @classmethod
    def invalid(cls, message: str) -> RegistryError:
        return cls(ErrorCode.INVALID_PARAMETER_VALUE, message)

    @classmethod
    def not_found(cls, message: str) -> RegistryError:
        return cls(ErrorCode.RESOURCE_DOES_NOT_EXIST, message)

    @classmethod
    def already_exists(cls, message: str) -> RegistryError:
        return cls(ErrorCode.RESOURCE_ALREADY_EXISTS, message)
