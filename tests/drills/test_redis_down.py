"""Drill: Redis (the Celery broker) stops while users write through the API.

The web server, a Celery worker and an S3-compatible store run in their own processes on the
test database; the broker is a Redis of the drill's own, killed (SIGKILL, nothing persisted:
queued and unacknowledged messages are lost) and started again empty on the same port.

Expected (docs/operations.md): every API write still succeeds, its webhook events wait in the
outbox and new versions stay PENDING_REGISTRATION; once Redis is back, the beat tasks (run here
by the drill, on beat's schedule with short windows) queue what was never queued, every
delivery arrives exactly once and every version becomes READY with the source's bytes.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from registry.models import ModelVersion, ModelVersionManifest
from tests.conftest import PASSWORD
from tests.drills.conftest import (
    FAST_WEBHOOKS_ENV,
    HttpApi,
    short_sweep_windows,
    stored_objects,
    upload_source,
)
from tests.processes import SOURCE_BUCKET, STORE_BUCKET, wait_for
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]

MLFLOW = "/api/2.0/mlflow"
EVENTS = [
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "MODEL_VERSION_READY",
]


@pytest.fixture
def stack_env(private_redis) -> dict[str, str]:
    return {
        "CELERY_BROKER_URL": private_redis.url,
        **FAST_WEBHOOKS_ENV,
        "ARTIFACT_COPY_RETRY_BACKOFF": "0.5",
        "ARTIFACT_COPY_MAX_RETRIES": "3",
    }


def _model_files(index: int) -> dict[str, bytes]:
    return {
        "MLmodel": f"flavors: {{}}\nindex: {index}\n".encode(),
        "model.bin": os.urandom(200_000),
    }


def _status(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name="drill", version=number).status


def _explain(stack) -> str:
    versions = ModelVersion.objects.filter(registered_model__name="drill").order_by("version")
    states = "\n".join(
        f"version {v.version}: {v.status} {v.status_message!r} updated {v.updated_at}"
        for v in versions
    )
    return f"{states}\n{stack.logs()}"


def test_redis_down_writes_succeed_and_nothing_is_lost(
    settings, user, registry_stack, moto_server, private_redis, receiver, publish_to
):
    api = HttpApi(registry_stack.url, user.username, PASSWORD)
    s3 = moto_server.client()
    expected_files = {
        number: upload_source(s3, SOURCE_BUCKET, f"runs/r{number}/model", _model_files(number))
        for number in (1, 2, 3)
    }
    api.ok("POST", f"{MLFLOW}/registered-models/create", {"name": "drill"})
    api.ok(
        "POST",
        f"{MLFLOW}/registry-webhooks/create",
        {"model_name": "drill", "events": EVENTS, "http_url_spec": {"url": receiver.url}},
    )
    api.ok(
        "POST",
        f"{MLFLOW}/model-versions/create",
        {"name": "drill", "source": f"s3://{SOURCE_BUCKET}/runs/r1/model"},
    )
    wait_for(lambda: _status(1) == "READY", 60, "version 1 to be READY")
    receiver.wait_for(2, timeout=60)  # created and ready
    # ... and recorded: Redis dies between tasks, not during one (that case is the supervisor's,
    # below).
    wait_for(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).count() == 2,
        30,
        "the first two deliveries to be recorded",
    )

    # --- Redis dies -------------------------------------------------------------------------
    private_redis.stop()
    slowest = 0.0
    move = {"name": "drill", "version": "1", "archive_existing_versions": False}
    writes = [
        ("model-versions/create", {"name": "drill", "source": f"s3://{SOURCE_BUCKET}/runs/r2/model"}),
        ("model-versions/create", {"name": "drill", "source": f"s3://{SOURCE_BUCKET}/runs/r3/model"}),
        ("model-versions/set-tag", {"name": "drill", "version": "1", "key": "k", "value": "v"}),
        ("model-versions/transition-stage", {**move, "stage": "Staging"}),
        ("model-versions/transition-stage", {**move, "stage": "Production"}),
    ]  # fmt: skip
    for path, payload in writes:
        started = time.monotonic()
        answer = api.call("POST", f"{MLFLOW}/{path}", payload)
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status == 200, (path, answer.status, answer.body)
    print(f"slowest write while Redis was down: {slowest:.2f} s")  # noqa: T201 - drill record

    # What is kept: the events in the outbox, the copies pending.
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    assert Counter(pending.values_list("event__event_type", flat=True)) == {
        "MODEL_VERSION_CREATED": 2,
        "MODEL_VERSION_TAG_SET": 1,
        "MODEL_VERSION_TRANSITIONED_STAGE": 2,
    }
    assert (_status(2), _status(3)) == ("PENDING_REGISTRATION", "PENDING_REGISTRATION")
    assert len(receiver.received) == 2
    assert ModelVersion.objects.get(version=1).current_stage == "Production"

    # --- Redis comes back, empty ------------------------------------------------------------
    private_redis.start()
    publish_to(private_redis.url)
    # Beat's two sweeps, once each, with windows short enough for a drill: nothing was ever
    # queued for these rows, so no live attempt can be racing them.
    short_sweep_windows(settings)
    time.sleep(2.1)  # the versions' quiet window (time limit + backoff max + interval)
    from registry.tasks import model_versions_pending_sweep_task
    from webhooks.tasks import webhook_deliveries_sweep_task

    assert webhook_deliveries_sweep_task()["queued"] == 5
    model_versions_pending_sweep_task()

    # A write after the return goes the ordinary way (queued on commit).
    api.ok(
        "POST",
        f"{MLFLOW}/model-versions/set-tag",
        {"name": "drill", "version": "1", "key": "k", "value": "after"},
    )
    # Beat keeps running the version sweep (every quiet window here): a copy message lost
    # again, say by a worker still reconnecting, is queued once more, as in production. Each
    # run re-queues only versions untouched for the window, so it never races a live attempt.
    # A worker that loses the broker while it acknowledges a task can exit (kombu's Redis
    # transport fails to restore unacknowledged messages on a closed connection; seen once on a
    # loaded machine): the supervisor starts it again, as a deployment's does.
    beat = {"sweeps": 1, "last": time.monotonic(), "restarts": 0}

    def ready() -> bool:
        if _status(2) == "READY" and _status(3) == "READY":
            return True
        beat["restarts"] += registry_stack.supervise_worker()
        if time.monotonic() - beat["last"] > 3.0:
            model_versions_pending_sweep_task()
            beat["sweeps"] += 1
            beat["last"] = time.monotonic()
        return False

    wait_for(ready, 90, "versions 2 and 3 to be READY", explain=lambda: _explain(registry_stack))
    sweeps, restarts = beat["sweeps"], beat["restarts"]
    print(f"version sweeps until READY: {sweeps}; worker restarts: {restarts}")  # noqa: T201
    total = 2 + 5 + 2 + 1  # before, during, the two copies finished, after
    received = receiver.wait_for(total, timeout=90)
    wait_for(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).count() == total,
        30,
        "every delivery to be recorded as delivered",
    )
    time.sleep(1.0)  # nothing more arrives

    # Every delivery arrived exactly once.
    ids = [request.headers["X-Registry-Delivery-Id"] for request in receiver.received]
    assert len(receiver.received) == total
    assert len(set(ids)) == total
    assert set(ids) == {
        str(code) for code in WebhookDelivery.objects.values_list("code", flat=True)
    }
    assert Counter(request.json()["event"] for request in received) == {
        "MODEL_VERSION_CREATED": 3,
        "MODEL_VERSION_READY": 3,
        "MODEL_VERSION_TAG_SET": 2,
        "MODEL_VERSION_TRANSITIONED_STAGE": 2,
    }
    # Every version is READY once, with the source's bytes in the store.
    assert WebhookEvent.objects.filter(event_type="MODEL_VERSION_READY").count() == 3
    for number, files in expected_files.items():
        version = ModelVersion.objects.select_related("registered_model").get(version=number)
        manifest = ModelVersionManifest.objects.get(model_version=version)
        assert {f["path"]: f["sha256"] for f in manifest.files} == files
        prefix = f"models-store/models/{version.registered_model.code}/{number}/"
        assert stored_objects(s3, STORE_BUCKET, prefix) == files
