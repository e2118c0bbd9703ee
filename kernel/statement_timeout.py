"""Telling a statement PostgreSQL cancelled for running past ``DATABASE_STATEMENT_TIMEOUT_MS``.

The bound itself is set per web request by ``config.statement_timeout``; this is what the code
that meets a cancelled statement needs (paging, the exception handler).
"""

from __future__ import annotations

from django.conf import settings

#: SQLSTATE of a statement PostgreSQL cancelled (statement_timeout, or pg_cancel_backend).
QUERY_CANCELED = "57014"


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (a Django database error) is a statement PostgreSQL cancelled."""
    cause = exc.__cause__
    return getattr(cause, "pgcode", None) == QUERY_CANCELED or (
        getattr(getattr(cause, "diag", None), "sqlstate", None) == QUERY_CANCELED
    )


def timeout_message() -> str:
    return f"DATABASE_STATEMENT_TIMEOUT_MS = {settings.DATABASE_STATEMENT_TIMEOUT_MS} ms"
