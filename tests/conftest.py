"""Fixtures shared by the whole suite: users, API clients that sign in as them, and the real
servers in their own processes (an S3-compatible server, the registry's web server and worker)
used by the artifact tests and the fault drills."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.processes import MotoServer, RegistryStack

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


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """A STATIC_ROOT that ``manage.py collectstatic`` filled under the production settings, with
    its manifest: what the image holds, and what production settings refuse to start without."""
    root = tmp_path_factory.mktemp("static")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REGISTRY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="collectstatic-for-the-tests",
        DJANGO_STATIC_ROOT=str(root),
        REGISTRY_DATA_DIR=str(tmp_path_factory.mktemp("collectstatic-data")),
    )
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (root / "staticfiles.json").exists()
    return root


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment for the web server and the worker; tests override it."""
    return {}


@pytest.fixture
def registry_stack(transactional_db, moto_server, tmp_path, stack_env) -> Iterator[RegistryStack]:
    """The registry's web server and a Celery worker in their own processes, on the test
    database, with moto as the store (emptied first)."""
    from django.db import connection

    moto_server.reset()
    (tmp_path / "sources").mkdir()
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}@"
        f"{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    stack = RegistryStack(moto_server, tmp_path, database_url, stack_env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
