"""A bound on how long one SQL statement of a web request may run (PostgreSQL).

``DATABASE_STATEMENT_TIMEOUT_MS`` (0: no bound of the service's own) applies to the statements
of web requests only. It is set by :class:`StatementTimeoutMiddleware` on the connection of the
thread that serves the request, once per connection (PostgreSQL's ``statement_timeout``, set in
autocommit so it outlives the statement that set it: when the request opens the connection, or
at the start of the request for one kept from before), not through the connection ``OPTIONS``:
those would apply to every process that reads the settings, and migrations (the concurrent
index builds above all), management commands and Celery tasks must not be cut short by a bound
meant for requests. Those never pass through the middleware, so they keep the server's default.

A statement that runs past the bound is cancelled by PostgreSQL (SQLSTATE 57014,
``kernel.database``); the connection stays usable. A search answers 400 telling the
caller to narrow the filter (``kernel.paging.paginate``); anything else 503
TEMPORARILY_UNAVAILABLE with ``Retry-After`` (``config.exception_handlers``), and nothing was
written, since the transaction is rolled back.

With PgBouncer in transaction mode a session setting does not stay with one client: set the
bound on the web processes' database role instead (``ALTER ROLE ... SET statement_timeout``)
and ``DATABASE_STATEMENT_TIMEOUT_MS=0`` (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# The bound set on a connection, kept on Django's wrapper of it: None when nothing was set
# (the server's default holds), _UNKNOWN after a set inside a transaction, which a rollback
# would undo.
_APPLIED = "_registry_statement_timeout_ms"
_UNKNOWN = object()

# The bound of the web request this thread (or task) is serving; None outside requests.
_request_bound: ContextVar[int | None] = ContextVar("registry_statement_timeout", default=None)


def _set(database: Any, milliseconds: int | None) -> None:
    with database.cursor() as cursor:
        if milliseconds is None:
            cursor.execute("RESET statement_timeout")
        else:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)", [f"{milliseconds}ms"]
            )


@receiver(connection_created)
def _new_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A connection opened while serving a web request gets the request's bound at once, in
    autocommit (Django opens every connection so), before any statement of the request."""
    wanted = _request_bound.get()
    if wanted and connection.vendor == "postgresql":
        _set(connection.connection, wanted)  # the driver's connection: no Django wrappers
        setattr(connection, _APPLIED, wanted)
    else:
        setattr(connection, _APPLIED, None)


def statement_timeout_apply(milliseconds: int) -> None:
    """Bound the statements of this thread's connection, if it is open, to ``milliseconds``
    (0: the server's own default). One statement when the value changed, none otherwise; a
    connection opened later gets the bound of the request being served when it opens."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return
    wanted = milliseconds or None
    current = getattr(connection, _APPLIED, None)
    if current is not _UNKNOWN and current == wanted:
        return
    _set(connection, wanted)
    setattr(connection, _APPLIED, _UNKNOWN if connection.in_atomic_block else wanted)


class StatementTimeoutMiddleware:
    """Bounds the statements of each request; opens no connection a request would not open."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        milliseconds = settings.DATABASE_STATEMENT_TIMEOUT_MS
        token = _request_bound.set(milliseconds or None)
        try:
            try:
                statement_timeout_apply(milliseconds)  # a connection kept from before
            except (OperationalError, InterfaceError):
                # The database is unreachable: the view meets the same error and answers 503
                # (config.exception_handlers, config.middleware); raised here it would be a 500.
                pass
            return self.get_response(request)
        finally:
            _request_bound.reset(token)
