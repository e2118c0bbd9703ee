"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, beat
from celery.signals import task_prerun
from django.core.exceptions import ImproperlyConfigured

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


class PersistentScheduler(beat.PersistentScheduler):
    """Celery's file-backed beat scheduler (``CELERY_BEAT_SCHEDULER``), which first creates the
    folder of its schedule file.

    The default file is in the data folder, which only the embedded default creates; beat started
    with ``DATABASE_URL`` and ``CELERY_BROKER_URL`` set crashed on a missing folder, and the
    sweeps stopped without a word. Also for ``celery worker -B`` and ``--schedule <path>``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        filename = kwargs.get("schedule_filename")
        if filename:
            folder = Path(filename).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ImproperlyConfigured(
                    f"Celery beat's schedule file {filename} cannot be written: its folder "
                    f"cannot be created ({exc}). Set CELERY_BEAT_SCHEDULE_FILENAME (or pass "
                    "--schedule) to a path in a writable folder, e.g. /tmp/celerybeat-schedule."
                ) from exc
        super().__init__(*args, **kwargs)


# Connects the receiver that records each success of a periodic task (config/periodic.py).
from config import periodic  # noqa: E402,F401
