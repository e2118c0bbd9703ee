"""Repeated failed sign-ins from one client are locked out for a while, not forever."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

SEARCH = "/api/2.0/mlflow/registered-models/search"


@pytest.fixture(autouse=True)
def short_window(settings):
    cache.clear()
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_FAILURE_LIMIT": 3, "LOGIN_LOCKOUT_SECONDS": 2}
    yield
    cache.clear()


def call(username: str, password: str, address: str = "10.0.0.1"):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username, password))
    return client.get(SEARCH)


def test_lockout_after_repeated_failures_then_release(user):
    for _ in range(3):
        assert call(user.username, "wrong").status_code == 401
    locked = call(user.username, PASSWORD)  # even the right password waits
    assert locked.status_code == 401
    assert locked.json()["error_code"] == "UNAUTHENTICATED"
    assert "Too many failed sign-ins" in locked.json()["message"]

    # Another client is not affected: the real user keeps working from their own machine.
    assert call(user.username, PASSWORD, address="10.0.0.2").status_code == 200

    time.sleep(2.1)  # the window passes
    assert call(user.username, PASSWORD).status_code == 200


def test_a_success_clears_the_count(user):
    for _ in range(2):
        call(user.username, "wrong")
    assert call(user.username, PASSWORD).status_code == 200
    for _ in range(2):
        call(user.username, "wrong")
    assert call(user.username, PASSWORD).status_code == 200


def test_the_admin_sign_in_form_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    for _ in range(3):
        response = client.post(
            "/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.9"
        )
        assert response.status_code == 200  # the form again, with an error
    response = client.post(
        "/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 200  # refused: still the form
    assert "_auth_user_id" not in client.session
