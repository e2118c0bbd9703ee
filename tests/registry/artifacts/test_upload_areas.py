"""Uploads through the public API, on the local store and on S3 (moto): each user's files live
in their own area, ``uploads/<username>/``, which the server enforces for listing, reading,
writing, deleting and registering; a deleted file is gone; and uploads expire."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.artifacts.services import artifact_uploads_expire, model_version_artifacts_copy
from registry.models import ModelVersion, ModelVersionManifest, RegisteredModel
from tests.conftest import PASSWORD, basic_auth
from tests.registry.artifacts.conftest import STORE_BUCKET

pytestmark = [pytest.mark.django_db, pytest.mark.real_artifact_copy]

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
CREATE = "/api/2.0/mlflow/model-versions/create"
TTL = 7 * 24 * 3600


class Stored:
    """What the store holds, read behind the API: ``{key: bytes}`` under its root."""

    def __init__(self, *, root: Path | None = None, s3=None, prefix: str = "") -> None:
        self.root, self.s3, self.prefix = root, s3, prefix

    def files(self, under: str = "") -> dict[str, bytes]:
        if self.root is not None:
            return {
                path.relative_to(self.root).as_posix(): path.read_bytes()
                for path in sorted((self.root / under).rglob("*"))
                if path.is_file()
            }
        found = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=STORE_BUCKET, Prefix=f"{self.prefix}/{under}"
        )
        for page in pages:
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=STORE_BUCKET, Key=item["Key"])["Body"].read()
                found[item["Key"][len(self.prefix) + 1 :]] = body
        return found


@pytest.fixture(params=["local", "s3"])
def stored(request, settings, tmp_path) -> Stored:
    """The registry's store, a local folder or a bucket of the moto server."""
    if request.param == "local":
        root = tmp_path / "store"
        root.mkdir()
        settings.ARTIFACT_STORE_URI = root.as_uri()
        return Stored(root=root)
    s3 = request.getfixturevalue("s3")
    settings.ARTIFACT_STORE_URI = f"s3://{STORE_BUCKET}/store"
    return Stored(s3=s3, prefix="store")


def _client(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username))
    return client


@pytest.fixture
def bob(django_user_model) -> APIClient:
    """Another signed-in user: CAN_READ on every model (the default), and may upload."""
    django_user_model.objects.create_user(username="bob", password=PASSWORD)
    return _client("bob")


@pytest.fixture
def admin(django_user_model) -> APIClient:
    django_user_model.objects.create_user(username="root", password=PASSWORD, is_superuser=True)
    return _client("root")


def _put(client: APIClient, path: str, body: bytes):
    return client.put(f"{ARTIFACTS}/{path}", body, content_type="application/octet-stream")


def _refused(response, area: str, own: str) -> None:
    """403 PERMISSION_DENIED naming the rule and the caller's own area."""
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert f"uploads/{area}/" in body["message"]
    assert "only in their own area, uploads/<username>/" in body["message"]
    assert f"yours is uploads/{own}/" in body["message"]


ALICE_FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": b"alice's model"}


def _upload_alices_model(api: APIClient) -> None:
    for name, body in ALICE_FILES.items():
        assert _put(api, f"uploads/alice/churn/{name}", body).status_code == 200


def test_another_user_cannot_overwrite_read_list_or_delete_an_upload(user, api, bob, stored):
    """The reported attack: alice stages model.pkl, bob (CAN_READ) overwrites it and deletes her
    folder. Each is refused, the stored bytes stay hers, and her version's digest covers them."""
    _upload_alices_model(api)
    before = stored.files()
    assert set(before) == {"uploads/alice/churn/MLmodel", "uploads/alice/churn/model.pkl"}

    _refused(_put(bob, "uploads/alice/churn/model.pkl", b"evil"), "alice", "bob")
    _refused(_put(bob, "uploads/alice/churn/extra.pkl", b"evil"), "alice", "bob")
    _refused(bob.get(f"{ARTIFACTS}/uploads/alice/churn/model.pkl"), "alice", "bob")
    for folder in ("uploads/alice", "uploads/alice/churn"):
        _refused(bob.get(ARTIFACTS, {"path": folder}), "alice", "bob")
        _refused(bob.delete(f"{ARTIFACTS}/{folder}"), "alice", "bob")
    _refused(bob.delete(f"{ARTIFACTS}/uploads/alice/churn/model.pkl"), "alice", "bob")
    # Listing uploads/ shows bob no other area (and not that alice has one).
    assert bob.get(ARTIFACTS, {"path": "uploads"}).json() == {}

    assert stored.files() == before
    services.registered_model_create(actor=user, name="churn")
    response = api.post(
        CREATE, {"name": "churn", "source": "mlflow-artifacts:/uploads/alice/churn"}, format="json"
    )
    assert response.status_code == 200, response.json()
    model_version = ModelVersion.objects.get()
    model_version_artifacts_copy(model_version_id=model_version.pk)
    model_version.refresh_from_db()
    assert model_version.status == "READY"
    manifest = ModelVersionManifest.objects.get(model_version=model_version)
    assert {f["path"]: f["sha256"] for f in manifest.files} == {
        name: hashlib.sha256(body).hexdigest() for name, body in ALICE_FILES.items()
    }


def test_each_user_lists_only_their_own_area_and_admins_every_area(api, bob, admin, stored):
    _upload_alices_model(api)
    assert _put(bob, "uploads/bob/m/MLmodel", b"bob's").status_code == 200

    def listed(client: APIClient, path: str) -> list[str]:
        return [entry["path"] for entry in client.get(ARTIFACTS, {"path": path}).json()["files"]]

    assert listed(api, "uploads") == ["alice"]
    assert listed(bob, "uploads") == ["bob"]
    assert listed(admin, "uploads") == ["alice", "bob"]
    assert listed(api, "uploads/alice/churn") == ["MLmodel", "model.pkl"]
    assert listed(admin, "uploads/alice/churn") == ["MLmodel", "model.pkl"]


def test_staged_files_of_private_models_are_private(settings, api, bob, stored):
    """With REGISTRY_DEFAULT_PERMISSION_LEVEL=NONE, the files staged for a private model were
    readable by every user who may upload."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    _upload_alices_model(api)

    _refused(bob.get(f"{ARTIFACTS}/uploads/alice/churn/model.pkl"), "alice", "bob")
    _refused(bob.get(ARTIFACTS, {"path": "uploads/alice/churn"}), "alice", "bob")
    response = api.get(f"{ARTIFACTS}/uploads/alice/churn/model.pkl")
    assert b"".join(response.streaming_content) == ALICE_FILES["model.pkl"]


def _churn_editable_by_bob(user, django_user_model) -> None:
    """Model "churn" of alice's, on which bob may create versions: what refuses him is the
    area, not the model."""
    services.registered_model_create(actor=user, name="churn")
    RegisteredModelGrant.objects.create(
        registered_model=RegisteredModel.objects.get(name="churn"),
        user=django_user_model.objects.get(username="bob"),
        level="CAN_EDIT",
    )


def test_nobody_registers_another_users_upload_admins_included(
    user, api, bob, admin, stored, django_user_model
):
    _upload_alices_model(api)
    _churn_editable_by_bob(user, django_user_model)
    source = "mlflow-artifacts:/uploads/alice/churn"

    _refused(bob.post(CREATE, {"name": "churn", "source": source}, format="json"), "alice", "bob")
    _refused(
        admin.post(CREATE, {"name": "churn", "source": source}, format="json"), "alice", "root"
    )
    # An area no user owns is nobody's to register either.
    response = api.post(
        CREATE, {"name": "churn", "source": "mlflow-artifacts:/uploads/churn"}, format="json"
    )
    _refused(response, "churn", "alice")
    response = api.post(
        CREATE, {"name": "churn", "source": "mlflow-artifacts:/uploads/"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "mlflow-artifacts:/uploads/<your username>/<path>" in response.json()["message"]

    assert ModelVersion.objects.count() == 0
    assert RegisteredModel.objects.get(name="churn").last_version_number == 0


def test_only_the_uploader_retries_the_registration_of_their_files(
    user, api, bob, stored, django_user_model
):
    """A retry copies what the area holds now: another user with CAN_EDIT may not start it."""
    _churn_editable_by_bob(user, django_user_model)
    response = api.post(
        CREATE, {"name": "churn", "source": "mlflow-artifacts:/uploads/alice/churn"}, format="json"
    )
    assert response.status_code == 200, response.json()
    model_version = ModelVersion.objects.get()
    model_version_artifacts_copy(model_version_id=model_version.pk)  # nothing uploaded yet
    model_version.refresh_from_db()
    assert model_version.status == "FAILED_REGISTRATION"
    _upload_alices_model(api)
    retry = "/api/2.0/registry/model-versions/retry-registration"

    _refused(bob.post(retry, {"name": "churn", "version": "1"}, format="json"), "alice", "bob")
    model_version.refresh_from_db()
    assert model_version.status == "FAILED_REGISTRATION"

    response = api.post(retry, {"name": "churn", "version": "1"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["model_version"]["status"] == "PENDING_REGISTRATION"


def test_admins_read_and_delete_any_area_but_never_write_to_one(api, admin, stored):
    _upload_alices_model(api)
    before = stored.files()

    response = admin.get(f"{ARTIFACTS}/uploads/alice/churn/model.pkl")
    assert b"".join(response.streaming_content) == ALICE_FILES["model.pkl"]
    _refused(_put(admin, "uploads/alice/churn/model.pkl", b"admin's"), "alice", "root")
    assert stored.files() == before

    response = admin.delete(f"{ARTIFACTS}/uploads/alice")
    assert (response.status_code, response.json()) == (200, {})
    assert stored.files() == {}


@pytest.mark.parametrize(
    "path", ["uploads/model.pkl", "uploads/alice", "uploads", "models/x/1/MLmodel"]
)
def test_uploads_outside_ones_own_area_folder_are_refused(api, stored, path):
    response = _put(api, path, b"x")

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "uploads go under uploads/<your username>/<path>" in response.json()["message"]
    assert stored.files() == {}


@pytest.mark.parametrize("path", ["uploads/alice/m", "uploads/alice/m/MLmodel/x"])
def test_a_file_where_a_folder_is_or_inside_a_file_is_refused(api, stored, path):
    """A folder store cannot hold both; S3 keys can (and take the write)."""
    assert _put(api, "uploads/alice/m/MLmodel", b"kept").status_code == 200

    response = _put(api, path, b"x")

    if stored.root is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Delete what is there first, or upload to another path" in response.json()["message"]
    assert stored.files() == {"uploads/alice/m/MLmodel": b"kept"}


def test_deleting_one_uploaded_file_deletes_it_and_nothing_beside_it(api, stored):
    """On S3 the delete listed what lay under ``<file>/`` only, found nothing, and answered
    200: the file stayed. ``model`` and ``model.pkl`` share a prefix, not a folder."""
    for path in ("uploads/alice/model", "uploads/alice/model.pkl", "uploads/alice/m/MLmodel"):
        assert _put(api, path, path.encode()).status_code == 200

    response = api.delete(f"{ARTIFACTS}/uploads/alice/model")

    assert (response.status_code, response.json()) == (200, {})
    assert set(stored.files()) == {"uploads/alice/model.pkl", "uploads/alice/m/MLmodel"}
    response = api.get(f"{ARTIFACTS}/uploads/alice/model")
    assert response.status_code == 404
    # A folder goes with everything in it.
    assert api.delete(f"{ARTIFACTS}/uploads/alice/m").status_code == 200
    assert set(stored.files()) == {"uploads/alice/model.pkl"}


@pytest.mark.parametrize("path", ["uploads/alice/model", "uploads/alice/nothing/here"])
def test_deleting_what_is_not_there_changes_nothing(api, stored, path):
    """As mlflow server answers: a delete is idempotent, so a retried one does not fail."""
    _put(api, "uploads/alice/model.pkl", b"kept")

    response = api.delete(f"{ARTIFACTS}/{path}")

    assert response.status_code == 200
    assert set(stored.files()) == {"uploads/alice/model.pkl"}


def test_a_username_that_is_not_one_path_segment_has_no_area(django_user_model, api, stored):
    """Users made outside Django's forms may have any name; "alice/x" must not reach into
    alice's area."""
    _upload_alices_model(api)
    django_user_model.objects.create_user(username="alice/churn", password=PASSWORD)
    odd = _client("alice/churn")

    response = _put(odd, "uploads/alice/churn/model.pkl", b"evil")

    assert response.status_code == 403
    assert "has no upload area" in response.json()["message"]
    assert odd.get(f"{ARTIFACTS}/uploads/alice/churn/model.pkl").status_code == 403
    assert stored.files() == {
        f"uploads/alice/churn/{name}": body for name, body in ALICE_FILES.items()
    }


# --- Expiry -------------------------------------------------------------------------------------


def _age(root: Path, key: str, seconds: float) -> None:
    """Make a local file (or folder) last written ``seconds`` ago, as time would."""
    when = time.time() - seconds
    os.utime(root / key, (when, when), follow_symlinks=False)


def test_the_sweep_deletes_local_uploads_older_than_the_ttl_and_keeps_the_rest(
    user, api, settings, tmp_path
):
    root = tmp_path / "store"
    root.mkdir()
    settings.ARTIFACT_STORE_URI = root.as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "UPLOAD_TTL": TTL}
    for path in (
        "uploads/alice/old/MLmodel",
        "uploads/alice/old/sub/weights.bin",
        "uploads/alice/young/MLmodel",
        "uploads/alice/mixed/old.bin",
        "uploads/alice/mixed/young.bin",
        "uploads/alice/registering/MLmodel",
    ):
        assert _put(api, path, path.encode()).status_code == 200
    (root / "uploads/alice/old/.tmp-0123").write_bytes(b"a write that died")
    # A version still pending registration reads its files, however old.
    services.registered_model_create(actor=user, name="churn")
    services.model_version_create(
        actor=user, name="churn", source="mlflow-artifacts:/uploads/alice/registering"
    )
    old = TTL + 3600
    for key in (
        "uploads/alice/old/MLmodel",
        "uploads/alice/old/sub/weights.bin",
        "uploads/alice/old/.tmp-0123",
        "uploads/alice/mixed/old.bin",
        "uploads/alice/registering/MLmodel",
        "uploads/alice/old/sub",
        "uploads/alice/old",
    ):
        _age(root, key, old)
    _age(root, "uploads/alice/young/MLmodel", TTL - 3600)

    from registry.tasks import artifact_uploads_expire_task

    assert artifact_uploads_expire_task() == 4

    assert Stored(root=root).files() == {
        path: path.encode()
        for path in (
            "uploads/alice/mixed/young.bin",
            "uploads/alice/registering/MLmodel",
            "uploads/alice/young/MLmodel",
        )
    }
    assert not (root / "uploads/alice/old").exists()  # old empty folders go too
    # The area still takes uploads where a folder went.
    assert _put(api, "uploads/alice/old/MLmodel", b"again").status_code == 200


def test_the_sweep_deletes_s3_uploads_older_than_the_ttl_and_keeps_the_rest(
    user, api, settings, s3
):
    settings.ARTIFACT_STORE_URI = f"s3://{STORE_BUCKET}/store"
    settings.ARTIFACTS = {**settings.ARTIFACTS, "UPLOAD_TTL": TTL}
    for path in ("uploads/alice/old/MLmodel", "uploads/alice/registering/MLmodel"):
        assert _put(api, path, b"old").status_code == 200
    old = s3.head_object(Bucket=STORE_BUCKET, Key="store/uploads/alice/old/MLmodel")
    dead = s3.create_multipart_upload(Bucket=STORE_BUCKET, Key="store/uploads/alice/old/big.bin")
    services.registered_model_create(actor=user, name="churn")
    services.model_version_create(
        actor=user, name="churn", source="mlflow-artifacts:/uploads/alice/registering"
    )
    models_key = "store/models/x/1/MLmodel"  # outside uploads/: never the sweep's
    s3.put_object(Bucket=STORE_BUCKET, Key=models_key, Body=b"x")
    # S3 stamps objects with its own clock, to the second: the young file is written in the
    # next second, and the sweep runs at the moment it turns exactly TTL old (kept: not older).
    time.sleep(1.05 - time.time() % 1)
    assert _put(api, "uploads/alice/young/MLmodel", b"young").status_code == 200
    written = s3.head_object(Bucket=STORE_BUCKET, Key="store/uploads/alice/young/MLmodel")
    # Exactly TTL old is not older than the TTL.
    assert artifact_uploads_expire(now=old["LastModified"] + timedelta(seconds=TTL)) == 0
    assert len(Stored(s3=s3, prefix="store").files()) == 4

    assert artifact_uploads_expire(now=written["LastModified"] + timedelta(seconds=TTL)) == 1

    assert Stored(s3=s3, prefix="store").files() == {
        "uploads/alice/registering/MLmodel": b"old",
        "uploads/alice/young/MLmodel": b"young",
        "models/x/1/MLmodel": b"x",
    }
    uploads = s3.list_multipart_uploads(Bucket=STORE_BUCKET).get("Uploads", [])
    assert dead["UploadId"] not in {upload["UploadId"] for upload in uploads}


def test_a_ttl_of_zero_keeps_every_upload(api, settings, tmp_path):
    root = tmp_path / "store"
    settings.ARTIFACT_STORE_URI = root.as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "UPLOAD_TTL": 0}
    _put(api, "uploads/alice/m/MLmodel", b"x")

    assert artifact_uploads_expire(now=timezone.now() + timedelta(days=3650)) == 0
    assert (root / "uploads/alice/m/MLmodel").exists()


def test_celery_beat_runs_the_sweep_hourly(settings):
    from registry.tasks import artifact_uploads_expire_task

    entry = settings.CELERY_BEAT_SCHEDULE["artifact-uploads-expire"]
    assert entry == {"task": artifact_uploads_expire_task.name, "schedule": 3600.0}
    assert settings.ARTIFACTS["UPLOAD_TTL"] == 7 * 24 * 3600
