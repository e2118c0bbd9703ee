"""Whether Celery beat's periodic tasks are running: the webhook and copy sweeps and the expiry
of transition requests (``CELERY_BEAT_SCHEDULE`` in config/settings.py).

They are what recovers lost broker messages and closes expired requests; when beat is down, or
no worker takes their messages, nothing fails and nothing says so. So each run that finishes
without an error is recorded (``registry.models.PeriodicTaskRun``, written by the worker when
Celery reports the task's success), and a task whose last success is older than
:data:`LATE_AFTER_INTERVALS` times its interval, or that never succeeded, is *late*:

- ``GET /health/periodic-tasks`` answers 200 when none is late, 503 otherwise, with each task's
  interval, last success and state (for monitors; ``/health`` itself stays a check of this web
  process and its database, so a beat outage does not take the web servers out of a load
  balancer);
- ``/metrics`` has the same per task (config/metrics.py).

A new deployment is late until each task has run once (at most one interval after beat starts).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from celery.signals import task_success
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

logger = logging.getLogger(__name__)

#: A task is late when its last success is older than this many of its intervals.
LATE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class PeriodicTask:
    name: str  # the schedule entry's name, e.g. "webhooks-sweep"
    task: str  # the Celery task it sends
    interval: float  # seconds


@dataclass(frozen=True)
class PeriodicTaskState:
    task: PeriodicTask
    last_succeeded_at: dt.datetime | None
    age: float | None  # seconds since the last success
    late: bool

    @property
    def state(self) -> str:
        if self.last_succeeded_at is None:
            return "never_succeeded"
        return "late" if self.late else "ok"


def _seconds(schedule: Any) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every.total_seconds() if isinstance(run_every, dt.timedelta) else None


def periodic_tasks() -> list[PeriodicTask]:
    """The entries of ``CELERY_BEAT_SCHEDULE`` that run at a fixed interval."""
    tasks = []
    for name, entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).items():
        interval = _seconds(entry.get("schedule"))
        if interval:
            tasks.append(PeriodicTask(name=name, task=entry["task"], interval=interval))
    return sorted(tasks, key=lambda task: task.name)


def periodic_task_record(*, task_name: str, now: dt.datetime | None = None) -> list[str]:
    """Record a success of the Celery task ``task_name`` for every schedule entry that sends it;
    the names of those entries (none for a task beat does not send)."""
    from registry.models import PeriodicTaskRun

    names = [task.name for task in periodic_tasks() if task.task == task_name]
    if names:
        now = now or timezone.now()
        PeriodicTaskRun.objects.bulk_create(
            [PeriodicTaskRun(name=name, last_succeeded_at=now) for name in names],
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["last_succeeded_at"],
        )
    return names


def periodic_task_states(now: dt.datetime | None = None) -> list[PeriodicTaskState]:
    from registry.models import PeriodicTaskRun

    now = now or timezone.now()
    runs = dict(PeriodicTaskRun.objects.values_list("name", "last_succeeded_at"))
    states = []
    for task in periodic_tasks():
        last = runs.get(task.name)
        age = max((now - last).total_seconds(), 0.0) if last else None
        late = age is None or age > LATE_AFTER_INTERVALS * task.interval
        states.append(PeriodicTaskState(task=task, last_succeeded_at=last, age=age, late=late))
    return states


@task_success.connect
def _record_success(sender: Any = None, **kwargs: Any) -> None:
    """In the worker, after a task returned: a scheduled one is recorded."""
    name = getattr(sender, "name", None)
    if not name or name not in {task.task for task in periodic_tasks()}:
        return
    try:
        periodic_task_record(task_name=name)
    except DatabaseError as exc:
        # The sweep did its work; only the record of it is missing, and shows as late.
        logger.warning("Could not record the run of %s: %s", name, str(exc).strip())


def periodic_tasks_health(request: HttpRequest) -> JsonResponse:
    """``GET /health/periodic-tasks``: 200 when every periodic task succeeded recently, 503 with
    the late ones otherwise. Anyone may call it; it names the schedule entries only."""
    try:
        states = periodic_task_states()
    except DatabaseError as exc:
        logger.warning("Periodic task health: database unavailable: %s", str(exc).strip())
        response = JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
        response["Retry-After"] = "5"
        return response
    late = [state.task.name for state in states if state.late]
    body = {
        "status": "late" if late else "ok",
        "late": late,
        "late_after_intervals": LATE_AFTER_INTERVALS,
        "periodic_tasks": [_detail(state) for state in states],
    }
    return JsonResponse(body, status=503 if late else 200)


def _detail(state: PeriodicTaskState) -> dict[str, Any]:
    last = state.last_succeeded_at
    return {
        "name": state.task.name,
        "interval_seconds": state.task.interval,
        "last_succeeded_at": last.isoformat() if last else None,
        "seconds_since_last_success": None if state.age is None else round(state.age, 3),
        "state": state.state,
    }
