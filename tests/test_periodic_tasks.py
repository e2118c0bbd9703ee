"""Celery beat starts in any configuration, and a sweep that stops running is reported.

Beat used to keep its schedule in the embedded default's data folder, which nothing else
creates: started with ``DATABASE_URL`` and ``CELERY_BROKER_URL`` set, it crashed on the missing
folder, and the webhook and copy sweeps and the expiry of requests stopped unnoticed. Each
successful run of a periodic task is now recorded, and ``/health/periodic-tasks`` and
``/metrics`` say when one is late.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config.celery import PersistentScheduler
from config.celery import app as celery_app
from config.periodic import LATE_AFTER_INTERVALS, periodic_tasks
from registry.models import PeriodicTaskRun
from tests.processes import BROKER_URL, stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent
HEALTH = "/health/periodic-tasks"
SWEEPS = {
    "artifact-uploads-expire",
    "artifacts-pending-sweep",
    "transition-requests-expire",
    "webhooks-sweep",
    "trail-head-export",
}


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


def _states(response) -> dict[str, str]:
    return {task["name"]: task["state"] for task in response.json()["periodic_tasks"]}


def test_the_schedule_lists_the_five_periodic_tasks():
    assert {task.name for task in periodic_tasks()} == SWEEPS


@pytest.mark.django_db(transaction=True)
def test_beat_starts_without_a_data_folder_and_the_sweeps_it_sends_are_recorded(
    tmp_path, anonymous_api
):
    data_dir = tmp_path / "var"  # the default schedule's folder, which nothing created
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "CELERY_", "REGISTRY_", "WEBHOOKS_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="beat-test-key",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=BROKER_URL,
        REGISTRY_DATA_DIR=str(data_dir),
        # Every sweep each second, so the test sees each one run.
        WEBHOOKS_SWEEP_INTERVAL="1",
        REGISTRY_REQUEST_EXPIRY_INTERVAL="1",
        ARTIFACT_COPY_SWEEP_INTERVAL="1",
        ARTIFACT_UPLOAD_EXPIRY_INTERVAL="1",
        REGISTRY_TRAIL_HEAD_INTERVAL="1",
    )
    redis.Redis.from_url(BROKER_URL).flushdb()
    response = anonymous_api.get(HEALTH)
    assert response.status_code == 503
    assert set(response.json()["late"]) == SWEEPS
    assert set(_states(response).values()) == {"never_succeeded"}

    celery = [sys.executable, "-m", "celery", "-A", "config"]
    beat_log, worker_log = tmp_path / "beat.log", tmp_path / "worker.log"
    beat = subprocess.Popen(  # noqa: S603
        [*celery, "beat", "--loglevel", "INFO"],
        cwd=cwd,
        env=env,
        stdout=beat_log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = subprocess.Popen(  # noqa: S603
        [
            *celery,
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=cwd,
        env=env,
        stdout=worker_log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def logs() -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}"
            for path in (beat_log, worker_log)
        )

    def all_recorded() -> bool:
        assert beat.poll() is None, logs()
        assert worker.poll() is None, logs()
        return set(PeriodicTaskRun.objects.values_list("name", flat=True)) == SWEEPS

    try:
        wait_for(all_recorded, 90, "every sweep to run once", explain=logs)
        assert list(data_dir.glob("celerybeat-schedule*")), logs()
        # Still up, still sending: each sweep runs again.
        first = dict(PeriodicTaskRun.objects.values_list("name", "last_succeeded_at"))
        wait_for(
            lambda: all(
                run.last_succeeded_at > first[run.name] for run in PeriodicTaskRun.objects.all()
            ),
            60,
            "every sweep to run again",
        )
        assert beat.poll() is None, logs()
    finally:
        stop_process(beat)
        stop_process(worker)
        redis.Redis.from_url(BROKER_URL).flushdb()

    response = anonymous_api.get(HEALTH)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert set(_states(response).values()) == {"ok"}


# transaction=True: before each task Celery's hook drops a connection past CONN_MAX_AGE (0 in the
# test settings), which would end a test wrapped in one transaction.
@pytest.mark.django_db(transaction=True)
def test_a_sweep_run_through_celery_updates_the_health_detail_and_the_metrics(
    anonymous_api, settings
):
    from webhooks.tasks import webhook_deliveries_sweep_task

    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    before = timezone.now()
    assert webhook_deliveries_sweep_task.apply().successful()

    run = PeriodicTaskRun.objects.get()
    assert run.name == "webhooks-sweep"
    assert run.last_succeeded_at >= before
    response = anonymous_api.get(HEALTH)
    assert response.status_code == 503  # the other sweeps never ran
    assert _states(response) == {
        "webhooks-sweep": "ok",
        "artifact-uploads-expire": "never_succeeded",
        "transition-requests-expire": "never_succeeded",
        "artifacts-pending-sweep": "never_succeeded",
        "trail-head-export": "never_succeeded",
    }
    assert sorted(response.json()["late"]) == [
        "artifact-uploads-expire",
        "artifacts-pending-sweep",
        "trail-head-export",
        "transition-requests-expire",
    ]

    metrics = {
        (sample.name, sample.labels.get("task")): sample.value
        for family in text_string_to_metric_families(anonymous_api.get("/metrics").content.decode())
        for sample in family.samples
        if sample.name.startswith("registry_periodic_task")
    }
    stamp = metrics[("registry_periodic_task_last_success_timestamp_seconds", "webhooks-sweep")]
    assert stamp == pytest.approx(run.last_succeeded_at.timestamp())
    assert metrics[("registry_periodic_task_late", "webhooks-sweep")] == 0
    assert metrics[("registry_periodic_task_late", "artifacts-pending-sweep")] == 1
    assert (
        metrics[
            ("registry_periodic_task_last_success_timestamp_seconds", "artifacts-pending-sweep")
        ]
        == 0
    )
    assert (
        metrics[("registry_periodic_task_interval_seconds", "webhooks-sweep")]
        == (settings.WEBHOOKS["SWEEP_INTERVAL"])
    )


@pytest.mark.django_db
def test_a_sweep_that_stopped_running_is_reported_late(anonymous_api):
    now = timezone.now()
    for task in periodic_tasks():
        PeriodicTaskRun.objects.create(
            name=task.name, last_succeeded_at=now - dt.timedelta(seconds=task.interval)
        )
    response = anonymous_api.get(HEALTH)
    assert response.status_code == 200, response.content
    assert response.json()["late"] == []

    webhooks = next(task for task in periodic_tasks() if task.name == "webhooks-sweep")
    stopped = now - dt.timedelta(seconds=(LATE_AFTER_INTERVALS + 1) * webhooks.interval)
    PeriodicTaskRun.objects.filter(name="webhooks-sweep").update(last_succeeded_at=stopped)
    response = anonymous_api.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "late"
    assert body["late"] == ["webhooks-sweep"]
    assert body["late_after_intervals"] == LATE_AFTER_INTERVALS
    detail = next(task for task in body["periodic_tasks"] if task["name"] == "webhooks-sweep")
    assert detail["state"] == "late"
    assert detail["interval_seconds"] == webhooks.interval
    assert detail["seconds_since_last_success"] >= (LATE_AFTER_INTERVALS + 1) * webhooks.interval
    # The web server's own health is not tied to beat: load balancers keep sending traffic.
    assert anonymous_api.get("/health").status_code == 200


def test_a_schedule_file_that_cannot_be_written_is_refused_naming_the_setting(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ImproperlyConfigured, match="CELERY_BEAT_SCHEDULE_FILENAME"):
        PersistentScheduler(
            app=celery_app, schedule_filename=str(blocker / "beat" / "schedule"), lazy=True
        )
    assert blocker.read_text() == ""
