"""Webhook secrets at rest: the column holds Fernet tokens, never the secret; keys rotate."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from webhooks import crypto
from webhooks.models import Webhook
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db

SECRET = "whsec-very-secret-value-1234"
AUTHORIZATION = "Bearer ci-token-abcdef"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="x" * 12)


def _stored(pk: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute('SELECT secret, "authorization" FROM webhooks_webhook WHERE id = %s', [pk])
        return cursor.fetchone()


def _create(admin) -> Webhook:
    return webhook_create(
        actor=admin,
        flavor="DATABRICKS",
        events=["MODEL_VERSION_CREATED"],
        url="https://hooks.example.com/x",
        secret=SECRET,
        authorization=AUTHORIZATION,
    )


def test_the_column_never_holds_the_secret(admin):
    webhook = _create(admin)
    stored_secret, stored_authorization = _stored(webhook.pk)
    assert SECRET not in stored_secret
    assert "ci-token" not in stored_authorization
    assert stored_secret.startswith("gAAAAA")  # a Fernet token
    # Each write is a fresh token (random IV): equal secrets do not look equal at rest.
    assert crypto.encrypt(SECRET) != crypto.encrypt(SECRET)
    fresh = Webhook.objects.get(pk=webhook.pk)
    assert (fresh.secret, fresh.authorization) == (SECRET, AUTHORIZATION)


def test_an_empty_secret_stays_empty(admin):
    webhook = webhook_create(
        actor=admin, flavor="DATABRICKS", events=["MODEL_VERSION_CREATED"],
        url="https://hooks.example.com/x",
    )  # fmt: skip
    assert _stored(webhook.pk) == ("", "")
    assert Webhook.objects.get(pk=webhook.pk).secret == ""


def test_keys_rotate(admin):
    with override_settings(REGISTRY_ENCRYPTION_KEYS=[KEY_A]):
        webhook = _create(admin)
        token_a = _stored(webhook.pk)[0]
    assert Fernet(KEY_A.encode()).decrypt(token_a.encode()).decode() == SECRET

    # A new key first, the old one second: old tokens still decrypt.
    with override_settings(REGISTRY_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert Webhook.objects.get(pk=webhook.pk).secret == SECRET
        call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    token_b, authorization_b = _stored(webhook.pk)
    assert Fernet(KEY_B.encode()).decrypt(token_b.encode()).decode() == SECRET
    with pytest.raises(InvalidToken):
        Fernet(KEY_A.encode()).decrypt(token_b.encode())

    # After the command only the new key is needed.
    with override_settings(REGISTRY_ENCRYPTION_KEYS=[KEY_B]):
        fresh = Webhook.objects.get(pk=webhook.pk)
        assert (fresh.secret, fresh.authorization) == (SECRET, AUTHORIZATION)
    # And without it nothing decrypts: the failure names the setting.
    with (
        override_settings(REGISTRY_ENCRYPTION_KEYS=[KEY_A]),
        pytest.raises(ImproperlyConfigured, match="REGISTRY_ENCRYPTION_KEYS"),
    ):
        Webhook.objects.get(pk=webhook.pk)


def test_a_malformed_key_is_refused():
    with (
        override_settings(REGISTRY_ENCRYPTION_KEYS=["not-a-key"]),
        pytest.raises(ImproperlyConfigured, match="key 1 is not a Fernet key"),
    ):
        crypto.encrypt("x")


def test_the_data_migration_encrypts_plain_values_once(admin):
    webhook = _create(admin)
    with connection.cursor() as cursor:  # as 0001 stored them
        cursor.execute(
            'UPDATE webhooks_webhook SET secret = %s, "authorization" = %s WHERE id = %s',
            [SECRET, AUTHORIZATION, webhook.pk],
        )
    migration = importlib.import_module("webhooks.migrations.0002_encrypt_secrets")
    editor = SimpleNamespace(connection=connection)
    migration.encrypt_plain_values(None, editor)
    once = _stored(webhook.pk)
    assert SECRET not in once[0]
    migration.encrypt_plain_values(None, editor)  # idempotent: tokens are left alone
    assert _stored(webhook.pk) == once
    assert Webhook.objects.get(pk=webhook.pk).secret == SECRET
    migration.decrypt_to_plain_values(None, editor)
    assert _stored(webhook.pk) == (SECRET, AUTHORIZATION)


def test_check_deploy_warns_without_a_key_of_its_own():
    with override_settings(REGISTRY_ENCRYPTION_KEYS=[]):
        assert [m.id for m in crypto.check_encryption_keys()] == ["registry.W001"]
    with override_settings(REGISTRY_ENCRYPTION_KEYS=[KEY_A]):
        assert crypto.check_encryption_keys() == []
