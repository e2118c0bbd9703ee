"""Fixtures shared by the whole suite: users, and API clients that sign in as them."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-staple"


def basic_auth(username: str, password: str = PASSWORD) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password=PASSWORD
    )


@pytest.fixture
def api(user) -> APIClient:
    """A DRF test client that signs every request in as ``user`` with HTTP Basic."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username))
    return client


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _artifact_copy_done_at_once(request, monkeypatch):
    """Versions created in tests become READY at once, with an empty manifest.

    New versions start PENDING_REGISTRATION and a Celery worker copies their ``source`` into
    the store. Most tests use made-up sources (``s3://b/m/1``) and run no worker; the ``mlflow``
    client would poll them for five minutes. This stands in for the worker's success. Tests of
    the copy itself are marked ``real_artifact_copy`` and get the real scheduling (of the
    copy and of the deletion of copies).
    """
    if request.node.get_closest_marker("real_artifact_copy"):
        return

    def copied(*, model_version):
        from registry.models import ModelVersion, ModelVersionStatus

        ModelVersion.objects.filter(pk=model_version.pk).update(status=ModelVersionStatus.READY)
        model_version.status = ModelVersionStatus.READY

    monkeypatch.setattr(
        "registry.artifacts.services.model_version_copy_schedule", copied, raising=True
    )
    # Nothing was copied, so there is nothing to delete (and no broker to queue it on).
    monkeypatch.setattr(
        "registry.artifacts.services.artifacts_delete_schedule",
        lambda *, folder: None,
        raising=True,
    )
