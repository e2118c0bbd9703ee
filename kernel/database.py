"""Telling database failures apart: a database that is unavailable, a statement cancelled.

The statement bound (``DATABASE_STATEMENT_TIMEOUT_MS``) is set per web request by
``config.statement_timeout``; this is what the code that meets a failed statement needs (paging,
the copy task, the exception handler).
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError

#: Errors of a database that is down or unreachable, or of a connection it dropped: the
#: request did nothing and can be sent again. (Deadlocks and statements cancelled for running
#: past DATABASE_STATEMENT_TIMEOUT_MS are OperationalErrors too, and just as safe to retry.)
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)

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
