"""Drills on the artifact copy: the Celery worker killed (SIGKILL) in the middle of a copy, and
the S3 server stopped in the middle of a copy for longer than the retry window.

The web server, the worker and moto run in their own processes; the broker is a Redis of the
drill's own. Copies stream through the worker (``ARTIFACT_SERVER_SIDE_COPY=false``) in 5 MiB
parts, one at a time, so a large file takes long enough to be interrupted, and the drill sees
the copy in progress in the store itself (a multipart upload with parts), never by sleeping.
"""

from __future__ import annotations

import os
import time

import pytest

from registry.models import AuditEntry, ModelVersion, ModelVersionManifest
from tests.conftest import PASSWORD
from tests.drills.conftest import HttpApi, short_sweep_windows, stored_objects, upload_source
from tests.processes import SOURCE_BUCKET, STORE_BUCKET, wait_for
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]

MLFLOW = "/api/2.0/mlflow"
RETRY = "/api/2.0/registry/model-versions/retry-registration"
BIG = 60 * 1024 * 1024  # 12 parts of 5 MiB


@pytest.fixture
def stack_env(private_redis) -> dict[str, str]:
    return {
        "CELERY_BROKER_URL": private_redis.url,
        "ARTIFACT_SERVER_SIDE_COPY": "false",
        "ARTIFACT_MULTIPART_CHUNK_MIB": "5",
        "ARTIFACT_MULTIPART_CONCURRENCY": "1",
        "ARTIFACT_COPY_CONCURRENCY": "1",
        # Three attempts 0.5 s and 1 s apart: the retry window of the S3 drill is seconds long.
        "ARTIFACT_COPY_RETRY_BACKOFF": "0.5",
        "ARTIFACT_COPY_MAX_RETRIES": "2",
        "WEBHOOKS_BACKOFF_BASE": "0.2",
        "WEBHOOKS_BACKOFF_MAX": "0.5",
    }


def _source_files() -> dict[str, bytes]:
    return {"MLmodel": b"flavors: {}\n", "weights.bin": os.urandom(BIG)}


def _version() -> ModelVersion:
    return ModelVersion.objects.select_related("registered_model").get(
        registered_model__name="drill", version=1
    )


def _copy_in_progress(s3) -> bool:
    """A multipart upload into the store with at least one part written."""
    uploads = s3.list_multipart_uploads(Bucket=STORE_BUCKET, Prefix="models-store/")
    for upload in uploads.get("Uploads", []):
        parts = s3.list_parts(Bucket=STORE_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        if parts.get("Parts"):
            return True
    return False


def _start(api: HttpApi, receiver, events: list[str]) -> None:
    api.ok("POST", f"{MLFLOW}/registered-models/create", {"name": "drill"})
    api.ok(
        "POST",
        f"{MLFLOW}/registry-webhooks/create",
        {"model_name": "drill", "events": events, "http_url_spec": {"url": receiver.url}},
    )
    api.ok(
        "POST",
        f"{MLFLOW}/model-versions/create",
        {"name": "drill", "source": f"s3://{SOURCE_BUCKET}/runs/big/model"},
    )


def _assert_ready_with(s3, expected: dict[str, str]) -> None:
    version = _version()
    assert (version.status, version.status_message) == ("READY", "")
    (manifest,) = ModelVersionManifest.objects.filter(model_version=version)
    assert {f["path"]: f["sha256"] for f in manifest.files} == expected
    assert version.artifact_digest.startswith("sha256:")
    assert not version.tags.exists()
    # The store holds exactly the version's files: no second copy, no partial upload left.
    folder = f"models-store/models/{version.registered_model.code}/1/"
    assert stored_objects(s3, STORE_BUCKET, "models-store/") == {
        f"models/{version.registered_model.code}/1/{path}": sha for path, sha in expected.items()
    }
    assert stored_objects(s3, STORE_BUCKET, folder) == expected
    assert s3.list_multipart_uploads(Bucket=STORE_BUCKET).get("Uploads", []) == []


def test_worker_killed_mid_copy_is_redone_once_after_restart(
    settings, user, registry_stack, moto_server, receiver, private_redis, publish_to
):
    api = HttpApi(registry_stack.url, user.username, PASSWORD)
    s3 = moto_server.client()
    expected = upload_source(s3, SOURCE_BUCKET, "runs/big/model", _source_files())
    _start(api, receiver, ["MODEL_VERSION_READY"])

    wait_for(lambda: _copy_in_progress(s3), 120, "the copy to be under way", interval=0.05)
    registry_stack.kill_worker()

    # What the user sees: the version pending, no files served yet.
    version = _version()
    assert version.status == "PENDING_REGISTRATION"
    assert not ModelVersionManifest.objects.filter(model_version=version).exists()
    answer = api.call("GET", f"{MLFLOW}/model-versions/get", {"name": "drill", "version": "1"})
    assert answer.body["model_version"]["status"] == "PENDING_REGISTRATION"

    registry_stack.start_worker()
    registry_stack.wait_worker_ready()
    # The dead worker never acknowledged its message: Redis would hand it out again only after
    # its visibility timeout (an hour). The beat sweep re-queues the version well before; run
    # it here once, as beat does, with a quiet window short enough for a drill (no attempt is
    # alive: its worker was killed).
    publish_to(private_redis.url)
    short_sweep_windows(settings)
    from registry.artifacts.services import model_versions_pending_sweep
    from registry.tasks import model_versions_pending_sweep_task

    wait_for(lambda: model_versions_pending_sweep() == [version.pk], 30, "the quiet window")
    model_versions_pending_sweep_task()

    wait_for(lambda: _version().status != "PENDING_REGISTRATION", 180, "the copy to finish")
    _assert_ready_with(s3, expected)
    # One "version ready" event, delivered once.
    assert WebhookEvent.objects.filter(event_type="MODEL_VERSION_READY").count() == 1
    (request,) = receiver.wait_for(1, timeout=30)
    assert request.json()["event"] == "MODEL_VERSION_READY"
    time.sleep(1.0)
    assert len(receiver.received) == 1
    # The lost message, should Redis hand it out again, finds the version READY: nothing runs.
    from registry.artifacts.services import model_version_artifacts_copy

    model_version_artifacts_copy(model_version_id=version.pk)
    _assert_ready_with(s3, expected)


def test_storage_down_past_the_retry_window_fails_then_retry_registration_completes(
    user, registry_stack, moto_server, receiver
):
    api = HttpApi(registry_stack.url, user.username, PASSWORD)
    s3 = moto_server.client()
    files = _source_files()
    expected = upload_source(s3, SOURCE_BUCKET, "runs/big/model", files)
    _start(api, receiver, ["MODEL_VERSION_READY", "MODEL_VERSION_REGISTRATION_FAILED"])

    wait_for(lambda: _copy_in_progress(s3), 120, "the copy to be under way", interval=0.05)
    moto_server.stop()  # SIGKILL: the store vanishes mid-transfer

    wait_for(lambda: _version().status != "PENDING_REGISTRATION", 120, "the retry window to pass")
    version = _version()
    assert version.status == "FAILED_REGISTRATION"
    assert version.status_message.startswith("Copy failed after 3 attempts: ")
    assert "storage unreachable" in version.status_message
    assert moto_server.url in version.status_message  # names the endpoint it could not reach
    answer = api.call("GET", f"{MLFLOW}/model-versions/get", {"name": "drill", "version": "1"})
    assert answer.body["model_version"]["status"] == "FAILED_REGISTRATION"
    assert answer.body["model_version"]["status_message"] == version.status_message
    # Retrying while the store is still down fails again, within the same bounded window.

    # The store is back (moto starts empty: put the buckets and the source back).
    moto_server.start()
    moto_server.reset()
    s3 = moto_server.client()
    upload_source(s3, SOURCE_BUCKET, "runs/big/model", files)

    answer = api.call("POST", RETRY, {"name": "drill", "version": "1"})

    assert answer.status == 200, answer.body
    assert answer.body["model_version"]["status"] == "PENDING_REGISTRATION"
    assert AuditEntry.objects.get().action == "MODEL_VERSION_REGISTRATION_RETRIED"
    wait_for(lambda: _version().status != "PENDING_REGISTRATION", 180, "the retried copy")
    _assert_ready_with(s3, expected)
    refused = api.call("POST", RETRY, {"name": "drill", "version": "1"})
    assert (refused.status, refused.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    # The hook heard the failure, then the success.
    received = receiver.wait_for(2, timeout=30)
    assert [r.json()["event"] for r in received] == [
        "MODEL_VERSION_REGISTRATION_FAILED",
        "MODEL_VERSION_READY",
    ]
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCESS).count() == 2
