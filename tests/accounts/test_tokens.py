"""API tokens: shown once, stored hashed, listed, revoked, expiring, usable as Bearer or Basic."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

TOKENS = "/api/2.0/registry/tokens/"
SEARCH = "/api/2.0/mlflow/registered-models/search"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def create(api, **payload) -> dict:
    response = api.post(TOKENS + "create", {"name": "ci", **payload}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_token_is_shown_once_and_stored_only_as_a_hash(api, user):
    body = create(api, expires_in_days=30)
    secret = body["token_value"]
    assert secret.startswith("mrt_")
    assert body["token"]["prefix"] == secret[:12]
    assert body["token"]["name"] == "ci"
    assert body["token"]["expiry_timestamp"] > body["token"]["creation_timestamp"]

    # No column of the table holds the secret, in any case or part beyond the visible prefix.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert not any(secret[12:] in str(value) for value in rows[0])

    listed = api.get(TOKENS + "list").json()["tokens"]
    assert [t["token_id"] for t in listed] == [body["token"]["token_id"]]
    assert "token_value" not in listed[0]
    assert secret not in str(listed)


def test_bearer_and_basic_with_a_token_authenticate(api, user):
    secret = create(api)["token_value"]
    assert bearer(secret).get(SEARCH).status_code == 200
    basic = APIClient()
    basic.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, secret))
    assert basic.get(SEARCH).status_code == 200
    # A token only signs in as its own user.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=basic_auth("mallory", secret))
    assert other.get(SEARCH).status_code == 401
    token = ApiToken.objects.get()
    assert token.last_used_at is not None


def test_revoked_and_expired_tokens_are_refused(api, user):
    revoked = create(api, name="old")
    expiring = create(api, name="short", expires_in_days=1)
    response = api.post(
        TOKENS + "revoke", {"token_id": revoked["token"]["token_id"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"]["revoked_timestamp"] is not None
    refused = bearer(revoked["token_value"]).get(SEARCH)
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"
    assert refused["WWW-Authenticate"]

    assert bearer(expiring["token_value"]).get(SEARCH).status_code == 200
    ApiToken.objects.filter(name="short").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(expiring["token_value"]).get(SEARCH).status_code == 401


def test_nobody_revokes_someone_elses_token(api, django_user_model):
    other = django_user_model.objects.create_user("bob", password="x-long-password")
    call_command("create_token", "bob", "--name", "bobs")
    theirs = ApiToken.objects.get(user=other)
    response = api.post(TOKENS + "revoke", {"token_id": str(theirs.code)}, format="json")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert api.post(TOKENS + "revoke", {"token_id": "not-a-uuid"}, format="json").status_code == 404


def test_token_list_is_paged(api):
    for n in range(5):
        create(api, name=f"t{n}")
    first = api.get(TOKENS + "list", {"max_results": 2}).json()
    second = api.get(
        TOKENS + "list", {"max_results": 2, "page_token": first["next_page_token"]}
    ).json()
    third = api.get(
        TOKENS + "list", {"max_results": 2, "page_token": second["next_page_token"]}
    ).json()
    names = [t["name"] for page in (first, second, third) for t in page["tokens"]]
    assert names == ["t4", "t3", "t2", "t1", "t0"]
    assert "next_page_token" not in third


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "expires_in_days": 0},
        {"name": "ok", "expires_in_days": "soon"},
        {"name": "ok", "expires_in_days": 100000},
    ],
)
def test_bad_token_requests(api, payload):
    response = api.post(TOKENS + "create", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ApiToken.objects.exists()


def test_create_token_command_prints_the_token_on_its_own_line(user, capsys):
    call_command("create_token", user.username, "--name", "deploy", "--expires-in-days", "7")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    token = ApiToken.objects.get()
    assert token.name == "deploy"
    assert token.expires_at is not None
    assert bearer(out[0]).get(SEARCH).status_code == 200


def test_create_token_command_refuses_an_unknown_user():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not exist"):
        call_command("create_token", "nobody")


def test_token_creation_is_rate_limited_per_user(api, user, settings, django_user_model):
    settings.REGISTRY = {**settings.REGISTRY, "TOKEN_CREATE_LIMIT": 3}
    for number in range(3):
        create(api, name=f"t{number}")
    # Revoking does not give the place back: the count is of tokens created, not active.
    first = api.get(TOKENS + "list").json()["tokens"][-1]["token_id"]
    assert api.post(TOKENS + "revoke", {"token_id": first}, format="json").status_code == 200

    refused = api.post(TOKENS + "create", {"name": "one-more"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "3 API tokens" in refused.json()["message"]
    assert ApiToken.objects.filter(user=user).count() == 3

    # Another user has a quota of their own, and the host's command is not limited.
    django_user_model.objects.create_user(username="bob", password=PASSWORD)
    as_bob = APIClient()
    as_bob.credentials(HTTP_AUTHORIZATION=basic_auth("bob"))
    create(as_bob, name="bobs")
    call_command("create_token", "alice", "--name", "from-the-host", stdout=io.StringIO())
    assert ApiToken.objects.filter(user=user).count() == 4


def test_token_creation_window_passes(api, user, settings):
    settings.REGISTRY = {**settings.REGISTRY, "TOKEN_CREATE_LIMIT": 1}
    create(api)
    assert api.post(TOKENS + "create", {"name": "b"}, format="json").status_code == 429
    ApiToken.objects.filter(user=user).update(created_at=timezone.now() - timedelta(seconds=3601))
    create(api, name="after-the-window")


# --- What a token may create -------------------------------------------------------------------


def basic_with_token(username: str, secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username, secret))
    return client


@pytest.mark.parametrize("sign_in", ["bearer", "basic"])
def test_a_token_cannot_create_a_token_that_outlives_it(api, user, sign_in):
    parent = create(api, name="one-day", expires_in_days=1)
    as_token = (
        bearer(parent["token_value"])
        if sign_in == "bearer"
        else basic_with_token(user.username, parent["token_value"])
    )
    for payload, asked in (
        ({"name": "forever"}, "no expiry"),
        ({"name": "a-month", "expires_in_days": 30}, "expires_in_days=30"),
    ):
        refused = as_token.post(TOKENS + "create", payload, format="json")
        assert refused.status_code == 403, refused.json()
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        message = refused.json()["message"]
        assert "can only create tokens that expire no later than that token" in message
        assert asked in message
        assert "at most 1" in message
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["one-day"]

    # Within its life: accepted, and never later than the token that created it.
    child = create(as_token, name="child", expires_in_days=1)
    assert child["token"]["expiry_timestamp"] <= parent["token"]["expiry_timestamp"]
    assert ApiToken.objects.get(name="child").created_with.name == "one-day"


def test_a_token_that_never_expires_and_a_password_create_any_token(api, user):
    forever = create(api, name="forever")  # with the password
    assert forever["token"]["expiry_timestamp"] is None
    child = create(bearer(forever["token_value"]), name="also-forever")
    assert child["token"]["expiry_timestamp"] is None
    create(bearer(forever["token_value"]), name="ten-years", expires_in_days=3650)


def test_revoking_a_token_revokes_the_tokens_it_created(api, user):
    parent = create(api, name="parent")
    child = create(bearer(parent["token_value"]), name="child")
    grandchild = create(bearer(child["token_value"]), name="grandchild")
    unrelated = create(api, name="by-password")

    response = api.post(TOKENS + "revoke", {"token_id": parent["token"]["token_id"]}, format="json")
    assert response.status_code == 200
    for made in (parent, child, grandchild):
        refused = bearer(made["token_value"]).get(SEARCH)
        assert refused.status_code == 401
        assert refused.json()["error_code"] == "UNAUTHENTICATED"
    assert bearer(unrelated["token_value"]).get(SEARCH).status_code == 200
    revoked = {
        t["name"]: t["revoked_timestamp"] is not None
        for t in api.get(TOKENS + "list").json()["tokens"]
    }
    assert revoked == {"parent": True, "child": True, "grandchild": True, "by-password": False}
