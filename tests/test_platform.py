"""Authentication on the API, the health check, the OpenAPI schema and the URL prefixes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db


def test_anonymous_calls_are_refused_with_a_challenge(anonymous_api):
    response = anonymous_api.get("/api/2.0/mlflow/registered-models/search")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert response["WWW-Authenticate"].startswith("Basic")


def test_a_wrong_password_is_refused(anonymous_api, user):
    anonymous_api.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, "wrong"))
    response = anonymous_api.post(
        "/api/2.0/mlflow/registered-models/create", {"name": "m"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    from registry.models import RegisteredModel

    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize(
    "prefix", ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/preview/mlflow/"]
)
def test_every_prefix_serves_the_protocol(api, prefix):
    response = api.post(prefix + "registered-models/create", {"name": "m"}, format="json")
    assert response.status_code == 200
    assert response.json()["registered_model"]["name"] == "m"


def test_health_needs_no_credentials(anonymous_api):
    response = anonymous_api.get("/health")
    assert response.status_code == 200
    assert response.content == b"OK"


def test_openapi_schema_and_docs(anonymous_api):
    response = anonymous_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert "/api/2.0/mlflow/registered-models/create" in paths
    assert "/api/2.0/mlflow/model-versions/search" in paths
    assert set(paths["/api/2.0/mlflow/registered-models/get-latest-versions"]) >= {"get", "post"}
    assert not any(path.startswith("/ajax-api/") for path in paths)

    docs = anonymous_api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_createsuperuser_noinput_reads_the_standard_variables(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root-admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "admin@example.com")
    call_command("createsuperuser", "--noinput")
    admin = get_user_model().objects.get(username="root-admin")
    assert admin.is_superuser
    assert admin.check_password("a-long-admin-password")


def test_ensure_admin_creates_one_admin_once(settings, tmp_path, monkeypatch, capsys):
    settings.DATA_DIR = tmp_path
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command("ensure_admin")
    username, password = (tmp_path / "admin-password.txt").read_text().split()
    assert username == "admin"
    assert password in capsys.readouterr().out
    assert get_user_model().objects.get(username="admin").check_password(password)

    call_command("ensure_admin")
    assert "already exists" in capsys.readouterr().out
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
