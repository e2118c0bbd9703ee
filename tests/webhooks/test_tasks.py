"""Every task keeps its thread's database connection between tasks unless it is broken or too
old (Celery's fix-up keeps it when ``CELERY_DB_REUSE_MAX`` is set; config/celery.py drops a
broken one before each task)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from config.celery import drop_broken_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _open() -> object:
    connection.ensure_connection()
    return connection.connection


def test_a_healthy_connection_is_kept_without_a_health_check():
    raw = _open()
    connection.close_at = time.monotonic() + 60  # CONN_MAX_AGE 60, the default outside tests
    connection.health_check_done = True

    drop_broken_connection()

    assert connection.connection is raw
    assert connection.health_check_done is True  # so no SELECT 1 before the claim


def test_a_connection_past_its_max_age_is_dropped():
    _open()
    connection.close_at = time.monotonic() - 1

    drop_broken_connection()

    assert connection.connection is None


def test_a_connection_that_failed_is_dropped_if_it_no_longer_works():
    raw = _open()
    connection.errors_occurred = True
    raw.close()  # what a server restart leaves behind

    drop_broken_connection()

    assert connection.connection is None


def test_the_outbox_queues_the_send_task_by_its_registered_name():
    from config.celery import app
    from webhooks.services.outbox import SEND_TASK
    from webhooks.tasks import webhook_delivery_send_task

    assert webhook_delivery_send_task.name == SEND_TASK
    assert app.tasks[SEND_TASK].acks_late
