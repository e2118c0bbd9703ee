"""The production security baseline (docs/security.md): `check --deploy` is clean, the
security headers are on the UI, the API and the API reference page, CORS is closed, and
passwords are hashed with Argon2 while older PBKDF2 hashes still verify and are upgraded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth.hashers import check_password, make_password
from django.test import Client, override_settings
from django.urls import reverse

from tests.conftest import PASSWORD, basic_auth

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def _production_env(tmp_path: Path, static_root: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REGISTRY_", "WEBHOOKS_", "ARTIFACT"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-real-production-key-" + "x7Q!r9" * 10,
        DJANGO_ALLOWED_HOSTS="registry.example.com",
        REGISTRY_DATA_DIR=str(tmp_path),
        REGISTRY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        # A cache every web process shares, for the sign-in throttle (not contacted by checks).
        DJANGO_CACHE_URL="redis://127.0.0.1:6379/1",
        DJANGO_STATIC_ROOT=str(static_root),
        # Signed models and promotion records (without a key, check --deploy warns).
        REGISTRY_SIGNING_KEY=ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path, collected_static):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production_env(tmp_path, collected_static),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output
    assert "System check identified no issues" in output


_STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self';"


def _assert_common_headers(response) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Access-Control-Allow-Origin" not in response


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_ui_page_carries_the_security_headers(user):
    client = Client()
    client.force_login(user)
    response = client.get(reverse("ui:model-list"), HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    _assert_common_headers(response)
    assert response["Content-Security-Policy"].startswith(_STRICT_CSP)
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")


def test_ui_templates_have_no_inline_script_or_style():
    for template in (REPO / "registry" / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for inline in ("<script>", "<style", " style=", " onclick="):
            assert inline not in text, template


def test_api_response_carries_the_headers_but_no_csp(api):
    response = api.get("/api/2.0/mlflow/registered-models/search")
    assert response.status_code == 200
    _assert_common_headers(response)
    assert "Content-Security-Policy" not in response  # JSON is not a document


def test_api_docs_page_has_no_inline_script(anonymous_api):
    response = anonymous_api.get("/api/docs/")
    assert response.status_code == 200
    _assert_common_headers(response)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self' 'unsafe-inline';" in policy
    html = response.content.decode()
    assert "<script>" not in html
    script = anonymous_api.get("/api/docs/?script")
    assert script.status_code == 200
    assert b"SwaggerUIBundle" in script.content


def test_admin_page_carries_the_strict_csp(django_user_model):
    admin = django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    client = Client()
    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith(_STRICT_CSP)


def test_cors_is_closed(api, anonymous_api, user):
    origin = "https://evil.example.com"
    preflight = anonymous_api.options(
        "/api/2.0/mlflow/registered-models/search",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    response = api.get("/api/2.0/mlflow/registered-models/search", HTTP_ORIGIN=origin)
    assert response.status_code == 200
    for answer in (preflight, response):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_new_passwords_are_hashed_with_argon2():
    with override_settings(PASSWORD_HASHERS=_production_hashers()):
        encoded = make_password("s3cret-passphrase")
        assert encoded.startswith("argon2$argon2id$")
        assert check_password("s3cret-passphrase", encoded)


def test_a_pbkdf2_hash_still_verifies_and_is_upgraded_on_sign_in(django_user_model, client):
    with override_settings(PASSWORD_HASHERS=_production_hashers()):
        user = django_user_model.objects.create_user(username="legacy")
        user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
        user.save(update_fields=["password"])
        response = client.get(
            "/api/2.0/mlflow/registered-models/search",
            HTTP_AUTHORIZATION=basic_auth("legacy"),
        )
        assert response.status_code == 200
        user.refresh_from_db()
        assert user.password.startswith("argon2$")


def _production_hashers() -> list[str]:
    """PASSWORD_HASHERS as config/settings.py sets it (the suite's settings use MD5)."""
    import importlib

    from django.conf import settings

    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    source = importlib.import_module("config.settings")
    return list(source.PASSWORD_HASHERS)
