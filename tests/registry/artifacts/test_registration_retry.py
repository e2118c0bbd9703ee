"""Retrying a failed registration: ``model_version_registration_retry`` and its route, in
process on the local-folder store (the copy runs by calling the task's service, as the worker
would; the end-to-end drill with S3 down is in tests/drills/)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.artifacts.services import model_version_artifacts_copy
from registry.models import AuditEntry, ModelVersion, ModelVersionManifest
from tests.conftest import PASSWORD, basic_auth

pytestmark = [pytest.mark.django_db, pytest.mark.real_artifact_copy]

RETRY = "/api/2.0/registry/model-versions/retry-registration"


@pytest.fixture
def failed(user, store, tmp_path, django_capture_on_commit_callbacks) -> ModelVersion:
    """Version 1 of "fraud", registered from a folder that did not exist yet: FAILED."""
    services.registered_model_create(actor=user, name="fraud")
    with django_capture_on_commit_callbacks(execute=False):
        model_version = services.model_version_create(
            actor=user, name="fraud", source=(tmp_path / "sources" / "fraud").as_uri()
        )
    model_version_artifacts_copy(model_version_id=model_version.pk)
    model_version.refresh_from_db()
    assert model_version.status == "FAILED_REGISTRATION"
    assert "does not exist" in model_version.status_message
    return model_version


def _state(model_version: ModelVersion) -> tuple[str, str]:
    model_version.refresh_from_db()
    return model_version.status, model_version.status_message


def test_retry_after_the_cause_is_fixed_copies_again_and_ends_ready(
    user, api, failed, tmp_path, django_capture_on_commit_callbacks
):
    previous = failed.status_message
    source = tmp_path / "sources" / "fraud"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: {}\n")

    with django_capture_on_commit_callbacks(execute=False) as scheduled:
        response = api.post(RETRY, {"name": "fraud", "version": "1"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()["model_version"]
    assert (body["name"], body["version"], body["status"], body["status_message"]) == (
        "fraud",
        "1",
        "PENDING_REGISTRATION",
        "",
    )
    assert len(scheduled) == 1  # the copy, queued once the change commits
    assert _state(failed) == ("PENDING_REGISTRATION", "")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.model_name, entry.actor_username) == (
        "MODEL_VERSION_REGISTRATION_RETRIED",
        "fraud",
        "alice",
    )
    assert entry.detail == {
        "version": 1,
        "source": failed.source,
        "previous_status_message": previous,
    }

    model_version_artifacts_copy(model_version_id=failed.pk)  # what the queued task runs

    assert _state(failed) == ("READY", "")
    manifest = ModelVersionManifest.objects.get(model_version=failed)
    assert [f["path"] for f in manifest.files] == ["MLmodel"]


@pytest.mark.parametrize("status", ["READY", "PENDING_REGISTRATION"])
def test_retry_is_refused_unless_the_registration_failed(
    user, api, failed, status, django_capture_on_commit_callbacks
):
    ModelVersion.objects.filter(pk=failed.pk).update(status=status, status_message="")
    failed.refresh_from_db()
    before = failed.updated_at

    with django_capture_on_commit_callbacks(execute=False) as scheduled:
        response = api.post(RETRY, {"name": "fraud", "version": "1"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Model version 1 of 'fraud' is {status}: only FAILED_REGISTRATION "
        "versions can retry their registration.",
    }
    assert _state(failed) == (status, "")
    failed.refresh_from_db()
    assert failed.updated_at == before
    assert scheduled == []
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("level", [None, "CAN_READ"])
def test_retry_needs_can_edit(settings, failed, django_user_model, level):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    reader = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    if level:
        RegisteredModelGrant.objects.create(
            registered_model=failed.registered_model, user=reader, level=level
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("rita"))
    state = _state(failed)

    response = client.post(RETRY, {"name": "fraud", "version": "1"}, format="json")

    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert (
        "may not retry the registration of versions of registered model 'fraud'"
        in (response.json()["message"])
    )
    assert "CAN_EDIT" in response.json()["message"]
    assert _state(failed) == state
    assert not AuditEntry.objects.exists()


def test_retry_validates_the_source_again(settings, api, failed):
    """A source allowed when the version was created may not be any more."""
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": []}
    state = _state(failed)

    response = api.post(RETRY, {"name": "fraud", "version": "1"}, format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert failed.source in response.json()["message"]
    assert _state(failed) == state
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"name": "fraud", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"name": "nope", "version": "1"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"name": "fraud", "version": "one"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"name": "fraud"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_retry_of_what_does_not_exist_or_bad_input(api, failed, payload, status, code):
    response = api.post(RETRY, payload, format="json")

    assert (response.status_code, response.json()["error_code"]) == (status, code)
    assert _state(failed)[0] == "FAILED_REGISTRATION"
