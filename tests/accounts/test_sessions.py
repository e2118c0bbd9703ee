"""Browser sessions are opened by passwords only, and end when the password changes.

API tokens are for programs: a token typed into a sign-in form is a wrong password, so no
session can outlive a token's expiry or its revocation. Sessions opened before this rule (some
possibly with a token) end once, because the session's signature of the password hash changed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils.crypto import salted_hmac
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken
from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-correct-horse-battery"
SEARCH = "/api/2.0/mlflow/registered-models/search"


def signed_in(client: Client) -> bool:
    response = client.get(reverse("ui:model-list"))
    return response.status_code == 200


def sign_in(username: str, password: str, path: str = "/login/") -> Client:
    client = Client()
    client.post(path, {"username": username, "password": password})
    return client


def token_through_the_api(username: str) -> str:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(username))
    response = api.post("/api/2.0/registry/tokens/create", {"name": "ci"}, format="json")
    assert response.status_code == 200
    return response.json()["token_value"]


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_token_does_not_open_a_session(user, path):
    user.is_staff = True  # so that the admin's form would accept the password
    user.save()
    secret = token_through_the_api(user.username)
    client = Client()
    response = client.post(path, {"username": user.username, "password": secret})
    assert response.status_code == 200  # the form again, with its refusal
    assert "correct username and password" in response.content.decode()
    assert not Session.objects.exists()
    assert "sessionid" not in client.cookies
    assert not signed_in(client)
    # The token still works where it belongs, and the password opens a session.
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert bearer.get(SEARCH).status_code == 200
    assert signed_in(sign_in(user.username, PASSWORD, path))
    assert Session.objects.count() == 1


def test_tokens_typed_into_the_form_count_as_failed_sign_ins(user, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_FAILURE_LIMIT": 2}
    secret = token_through_the_api(user.username)
    for _ in range(2):
        sign_in(user.username, secret)
    assert not signed_in(sign_in(user.username, PASSWORD))  # locked for this address
    cache.clear()


def test_changing_a_password_in_the_admin_ends_the_users_sessions(user, django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    laptop = sign_in(user.username, PASSWORD)
    phone = sign_in(user.username, PASSWORD)
    assert signed_in(laptop)
    assert signed_in(phone)

    admin = sign_in("root", PASSWORD, "/admin/login/")
    response = admin.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    assert not signed_in(laptop)
    assert not signed_in(phone)
    assert signed_in(admin)
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, PASSWORD))
    assert old.get(SEARCH).status_code == 401
    assert signed_in(sign_in(user.username, NEW_PASSWORD))


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(django_user_model):
    django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True)
    here = sign_in("staff", PASSWORD, "/admin/login/")
    elsewhere = sign_in("staff", PASSWORD)
    response = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert signed_in(here)
    assert not signed_in(elsewhere)


def test_sessions_signed_before_sign_in_took_passwords_only_have_ended(user):
    """A session whose password-hash signature was made the way it was when the sign-in forms
    still took tokens is not accepted: it may have been opened with a token."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "accounts.backends.RegistryBackend"
    store[HASH_SESSION_KEY] = salted_hmac(
        "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
        user.password,
        algorithm="sha256",
    ).hexdigest()
    store.save()
    client = Client()
    client.cookies["sessionid"] = store.session_key
    assert not signed_in(client)
    assert not Session.objects.filter(session_key=store.session_key).exists()

    # A session signed the current way, for the same user, is.
    current = Client()
    current.force_login(user)
    assert signed_in(current)


def test_revoking_a_token_leaves_nothing_it_opened(user):
    """Revocation ends the token for every API call at once (no cache), and the tokens it
    created; it never opened a session, so there is none to end."""
    secret = token_through_the_api(user.username)
    token = ApiToken.objects.get()
    assert not signed_in(sign_in(user.username, secret))
    services.api_token_revoke(actor=user, token_id=token.code)
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert bearer.get(SEARCH).status_code == 401
    assert not Session.objects.exists()
