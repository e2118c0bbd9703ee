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
