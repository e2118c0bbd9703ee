"""Managed artifacts on the local-folder store, in process: the copy service, the artifact
endpoints, permissions, and every traversal attempt refused with nothing written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from registry import services
from registry.artifacts.copy import Manifest, ManifestEntry
from registry.artifacts.services import model_version_artifacts_copy
from registry.models import ModelVersion, ModelVersionManifest
from tests.conftest import basic_auth

pytestmark = [pytest.mark.django_db, pytest.mark.real_artifact_copy]

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "sources" / "fraud"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.bin").write_bytes(os.urandom(100_000))
    (folder / "sub" / "notes.txt").write_text("hello")
    return folder


def _files_in(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _create(user, name: str, source: str) -> ModelVersion:
    from registry.models import RegisteredModel

    if not RegisteredModel.objects.filter(name=name).exists():
        services.registered_model_create(actor=user, name=name)
    return services.model_version_create(actor=user, name=name, source=source)


def test_copy_of_a_file_source_makes_the_version_ready_with_its_manifest(
    user, api, store, model_dir
):
    model_version = _create(user, "fraud", model_dir.as_uri())
    assert model_version.status == "PENDING_REGISTRATION"

    model_version_artifacts_copy(model_version_id=model_version.pk)

    model_version.refresh_from_db()
    assert (model_version.status, model_version.status_message) == ("READY", "")
    manifest = ModelVersionManifest.objects.get(model_version=model_version)
    folder = f"models/{model_version.registered_model.code}/1"
    expected = {path: _sha(model_dir / path) for path in ("MLmodel", "model.bin", "sub/notes.txt")}
    assert {f["path"]: f["sha256"] for f in manifest.files} == expected
    assert manifest.total_size == sum((model_dir / p).stat().st_size for p in expected)
    assert (
        model_version.artifact_digest
        == Manifest(
            tuple(ManifestEntry(f["path"], f["size"], f["sha256"]) for f in manifest.files)
        ).digest
    )
    assert not model_version.tags.exists()
    assert _files_in(store) == [f"{folder}/{path}" for path in sorted(expected)]
    # Written once, read-only afterwards.
    assert (store / folder / "model.bin").stat().st_mode & 0o222 == 0

    listing = api.get(ARTIFACTS, {"path": folder}).json()
    assert listing == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "model.bin", "is_dir": False, "file_size": 100_000},
            {"path": "sub", "is_dir": True},
        ]
    }
    assert api.get(ARTIFACTS, {"path": f"{folder}/MLmodel"}).json() == {}
    response = api.get(f"{ARTIFACTS}/{folder}/model.bin")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (model_dir / "model.bin").read_bytes()

    manifest_api = api.get("/api/2.0/registry/model-versions/manifest?name=fraud&version=1")
    assert manifest_api.json()["manifest"]["digest"] == model_version.artifact_digest
    assert manifest_api.json()["artifact_path"] == folder


def test_a_second_run_of_the_task_changes_nothing(user, store, model_dir):
    model_version = _create(user, "fraud", model_dir.as_uri())
    model_version_artifacts_copy(model_version_id=model_version.pk)
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}

    model_version_artifacts_copy(model_version_id=model_version.pk)  # a redelivered message

    assert {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()} == before
    assert ModelVersionManifest.objects.count() == 1


def test_missing_file_source_fails_naming_it(user, store, tmp_path):
    source = (tmp_path / "sources" / "not-there").as_uri()
    model_version = _create(user, "fraud", source)

    model_version_artifacts_copy(model_version_id=model_version.pk)

    model_version.refresh_from_db()
    assert model_version.status == "FAILED_REGISTRATION"
    assert model_version.status_message == f"Copy failed: Source {source} does not exist."
    assert _files_in(store) == []


def test_pending_versions_do_not_move_between_stages_or_serve_files(user, api, store, model_dir):
    _create(user, "fraud", model_dir.as_uri())

    response = api.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        {"name": "fraud", "version": "1", "stage": "Production"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Model version 1 of 'fraud' is PENDING_REGISTRATION: only READY versions "
        "move between stages.",
    }
    response = api.get("/api/2.0/mlflow/model-versions/get-download-uri?name=fraud&version=1")
    assert response.status_code == 400
    assert "PENDING_REGISTRATION" in response.json()["message"]


def test_upload_then_register_then_download(user, api, store):
    for name, body in (("MLmodel", b"flavors: {}\n"), ("data/weights.bin", b"\x00" * 5000)):
        response = api.put(
            f"{ARTIFACTS}/uploads/alice/m1/{name}", body, content_type="application/octet-stream"
        )
        assert (response.status_code, response.json()) == (200, {})
    model_version = _create(user, "up", "mlflow-artifacts:/uploads/alice/m1")

    model_version_artifacts_copy(model_version_id=model_version.pk)

    model_version.refresh_from_db()
    assert model_version.status == "READY"
    folder = f"models/{model_version.registered_model.code}/1"
    response = api.get(f"{ARTIFACTS}/{folder}/data/weights.bin")
    assert b"".join(response.streaming_content) == b"\x00" * 5000


@pytest.mark.parametrize(
    "path",
    [
        "uploads/../models/x",
        "uploads/%2e%2e/models/x",  # decoded once by the server: ".."
        "uploads/%252e%252e/x",  # double-encoded: refused, not decoded again
        "uploads/a/./b",
        "uploads/a%2f..%2f..%2fb",
        "/etc/passwd",
        "uploads/a\\..\\..\\b",
        "uploads//x",
    ],
)
def test_traversal_in_uploads_and_downloads_is_refused(api, store, path):
    put = api.put(f"{ARTIFACTS}/{path}", b"evil", content_type="application/octet-stream")
    get = api.get(f"{ARTIFACTS}/{path}")
    listed = api.get(ARTIFACTS, {"path": path})

    for response in (put, get, listed):
        assert response.status_code == 400, path
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert _files_in(store.parent) == []


def test_uploads_cannot_write_into_managed_copies(user, api, store, model_dir):
    model_version = _create(user, "fraud", model_dir.as_uri())
    model_version_artifacts_copy(model_version_id=model_version.pk)
    folder = f"models/{model_version.registered_model.code}/1"
    before = (store / folder / "MLmodel").read_bytes()

    response = api.put(f"{ARTIFACTS}/{folder}/MLmodel", b"x", content_type="text/plain")

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert (store / folder / "MLmodel").read_bytes() == before


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_text("secret")
    return folder


@pytest.mark.parametrize(
    "make_source",
    [
        lambda root, outside: f"file://{root}/../outside",
        lambda root, outside: f"file://{root}/%2e%2e/outside",
        lambda root, outside: f"file://{root}/./x",
        lambda root, outside: f"file://{outside}",  # not under an allowed root
        lambda root, outside: f"file://{_symlink(root / 'link', outside)}",
        lambda root, outside: f"file://{_folder_with_link(root / 'm', outside)}",
        lambda root, outside: f"file://{_symlink(root / 'link2', outside)}/secret",
    ],
)
def test_traversal_in_file_sources_is_refused(user, api, store, tmp_path, outside, make_source):
    api.post("/api/2.0/mlflow/registered-models/create", {"name": "m"}, format="json")
    source = make_source(tmp_path / "sources", outside)

    response = api.post(
        "/api/2.0/mlflow/model-versions/create", {"name": "m", "source": source}, format="json"
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert ModelVersion.objects.count() == 0
    assert _files_in(store) == []


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def _folder_with_link(folder: Path, target: Path) -> Path:
    folder.mkdir()
    (folder / "MLmodel").write_text("x")
    (folder / "escape").symlink_to(target / "secret")
    return folder


def test_a_symlink_that_appears_after_registration_fails_the_copy(user, store, model_dir, outside):
    model_version = _create(user, "fraud", model_dir.as_uri())
    (model_dir / "escape").symlink_to(outside / "secret")

    model_version_artifacts_copy(model_version_id=model_version.pk)

    model_version.refresh_from_db()
    assert model_version.status == "FAILED_REGISTRATION"
    assert "symlinks are refused" in model_version.status_message
    assert _files_in(store) == []


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("gs://bucket/model", "this kind of source is not supported"),
        ("hdfs://x/y", "this kind of source is not supported"),
        ("runs:/abc/model", "MLFLOW_TRACKING_SERVER_URL"),
        ("models/relative", "this kind of source is not supported"),
        ("mlflow-artifacts:/models/x/1", "mlflow-artifacts:/uploads/<your username>/<path>"),
    ],
)
def test_unsupported_sources_say_what_is_supported(api, store, source, fragment):
    api.post("/api/2.0/mlflow/registered-models/create", {"name": "m"}, format="json")

    response = api.post(
        "/api/2.0/mlflow/model-versions/create", {"name": "m", "source": source}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in body["message"]
    assert "Supported sources: s3://<bucket>/<path>" in body["message"]
    assert ModelVersion.objects.count() == 0


def test_s3_sources_inside_the_registrys_own_store_are_refused(settings, api):
    settings.ARTIFACT_STORE_URI = "s3://registry/models"
    api.post("/api/2.0/mlflow/registered-models/create", {"name": "m"}, format="json")

    response = api.post(
        "/api/2.0/mlflow/model-versions/create",
        {"name": "m", "source": "s3://registry/models/models/x/1"},
        format="json",
    )

    assert response.status_code == 400
    assert "inside the registry's own artifact store" in response.json()["message"]


def test_downloads_need_can_read_and_uploads_a_signed_in_user(
    settings, user, api, anonymous_api, django_user_model, store, model_dir
):
    model_version = _create(user, "fraud", model_dir.as_uri())
    model_version_artifacts_copy(model_version_id=model_version.pk)
    folder = f"models/{model_version.registered_model.code}/1"
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    django_user_model.objects.create_user(username="mallory", password="pw-mallory-123")
    outsider = APIClient()
    outsider.credentials(HTTP_AUTHORIZATION=basic_auth("mallory", "pw-mallory-123"))

    assert api.get(f"{ARTIFACTS}/{folder}/MLmodel").status_code == 200
    refused = outsider.get(f"{ARTIFACTS}/{folder}/MLmodel")
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert outsider.get(ARTIFACTS, {"path": folder}).status_code == 403
    anonymous = anonymous_api.put(f"{ARTIFACTS}/uploads/alice/x", b"x", content_type="text/plain")
    assert anonymous.status_code == 401
    assert _files_in(store / "uploads") == [] if (store / "uploads").exists() else True


def test_registration_outcomes_are_webhook_events(user, store, model_dir, tmp_path):
    """READY and FAILED_REGISTRATION each write an event for subscribed hooks, with the change."""
    from webhooks.models import WebhookDelivery, WebhookFlavor
    from webhooks.services.management import webhook_create

    services.registered_model_create(actor=user, name="fraud")
    webhook_create(
        actor=user,
        flavor=WebhookFlavor.DATABRICKS,
        model_name="fraud",
        events=["MODEL_VERSION_READY", "MODEL_VERSION_REGISTRATION_FAILED"],
        url="http://127.0.0.1:9/hook",
    )
    ready = _create(user, "fraud", model_dir.as_uri())
    model_version_artifacts_copy(model_version_id=ready.pk)
    failed = _create(user, "fraud", (tmp_path / "sources" / "missing").as_uri())
    model_version_artifacts_copy(model_version_id=failed.pk)

    events = list(
        WebhookDelivery.objects.order_by("pk").values_list(
            "event__event_type", "event__version", "event__data__status"
        )
    )
    assert events == [
        ("MODEL_VERSION_READY", "1", "READY"),
        ("MODEL_VERSION_REGISTRATION_FAILED", "2", "FAILED_REGISTRATION"),
    ]


def test_an_unreachable_broker_does_not_fail_the_write(
    user, api, store, model_dir, django_capture_on_commit_callbacks
):
    """The version is committed and answered; the pending-version sweep queues its copy later."""
    from config.celery import app as celery_app
    from tests.webhooks.conftest import CLOSED_PORT_BROKER, use_broker

    services.registered_model_create(actor=user, name="fraud")
    old = celery_app.conf.broker_url
    use_broker(CLOSED_PORT_BROKER)
    try:
        with django_capture_on_commit_callbacks(execute=True) as queued:
            response = api.post(
                "/api/2.0/mlflow/model-versions/create",
                {"name": "fraud", "source": model_dir.as_uri()},
                format="json",
            )
            deleted = api.delete(
                "/api/2.0/mlflow/model-versions/delete",
                {"name": "fraud", "version": "1"},
                format="json",
            )
    finally:
        use_broker(old)
    assert len(queued) == 2  # the copy, then the deletion of the copy
    assert response.status_code == 200, response.json()
    assert response.json()["model_version"]["status"] == "PENDING_REGISTRATION"
    assert deleted.status_code == 200


# --- Copies between versions (models:/<name>/<version>) ---------------------------------------


def _ready_copy_of(user, model_dir) -> ModelVersion:
    source = _create(user, "fraud", model_dir.as_uri())
    model_version_artifacts_copy(model_version_id=source.pk)
    source.refresh_from_db()
    assert source.status == "READY"
    services.registered_model_create(actor=user, name="fraud-prod")
    return source


def test_a_copy_of_a_version_copies_its_managed_copy_with_the_same_digest(
    user, api, store, model_dir
):
    source = _ready_copy_of(user, model_dir)
    # What the first copy read is gone: the second copy reads the registry's own copy.
    for path in sorted(model_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    copy = services.model_version_create(actor=user, name="fraud-prod", source="models:/fraud/1")
    model_version_artifacts_copy(model_version_id=copy.pk)

    copy.refresh_from_db()
    assert (copy.status, copy.status_message) == ("READY", "")
    assert copy.artifact_digest == source.artifact_digest
    folder = f"models/{copy.registered_model.code}/1"
    response = api.get(f"{ARTIFACTS}/{folder}/model.bin")
    source_folder = store / f"models/{source.registered_model.code}/1"
    assert b"".join(response.streaming_content) == (source_folder / "model.bin").read_bytes()


def test_a_copy_fails_when_the_copied_files_no_longer_match_their_digest(user, store, model_dir):
    source = _ready_copy_of(user, model_dir)
    tampered = store / f"models/{source.registered_model.code}/1/sub/notes.txt"
    tampered.chmod(0o644)
    tampered.write_text("changed behind the registry's back")

    copy = services.model_version_create(actor=user, name="fraud-prod", source="models:/fraud/1")
    model_version_artifacts_copy(model_version_id=copy.pk)

    copy.refresh_from_db()
    assert copy.status == "FAILED_REGISTRATION"
    assert "no longer match its digest" in copy.status_message
    assert not (store / f"models/{copy.registered_model.code}/1").exists()


def test_a_copy_of_a_version_deleted_before_the_copy_fails_naming_it(
    user, api, store, model_dir, django_capture_on_commit_callbacks
):
    _ready_copy_of(user, model_dir)
    copy = services.model_version_create(actor=user, name="fraud-prod", source="models:/fraud/1")
    with django_capture_on_commit_callbacks(execute=False):
        services.model_version_delete(actor=user, name="fraud", version="1")

    model_version_artifacts_copy(model_version_id=copy.pk)

    copy.refresh_from_db()
    assert copy.status == "FAILED_REGISTRATION"
    assert "models:/fraud/1" in copy.status_message
    assert "deleted" in copy.status_message
    # Nothing to retry from: said so, not "unsupported source".
    response = api.post(
        "/api/2.0/registry/model-versions/retry-registration",
        {"name": "fraud-prod", "version": "1"},
        format="json",
    )
    assert response.status_code == 400
    assert "which was deleted" in response.json()["message"]
