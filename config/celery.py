"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def drop_broken_connection() -> None:
    """Around each task what Django does around each request: drop this thread's database
    connection if an error left it unusable or it outlived ``CONN_MAX_AGE``.

    ``CELERY_DB_REUSE_MAX`` keeps connections across tasks (Celery's Django fix-up would
    otherwise open a new PostgreSQL backend for every task); this makes sure a broken one, say
    after a database restart, is not kept. It looks only when needed, so a healthy connection
    costs no health-check query.
    """
    from django.db import connection

    if connection.connection is None:
        return
    expired = connection.close_at is not None and time.monotonic() >= connection.close_at
    if connection.errors_occurred or expired:
        connection.close_if_unusable_or_obsolete()


@task_prerun.connect
def _before_each_task(**kwargs: Any) -> None:
    drop_broken_connection()
