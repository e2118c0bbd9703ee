"""Encryption at rest of the webhook secrets (the signing secret and the Authorization header).

The values are Fernet tokens (AES-128-CBC + HMAC-SHA256, `cryptography`'s MultiFernet) under
the keys in ``settings.REGISTRY_ENCRYPTION_KEYS``: the first key encrypts, every key decrypts,
so a key is rotated by putting a new one first, running ``manage.py rotate_encryption_keys``,
and then dropping the old one. A key derived from ``SECRET_KEY`` always decrypts too (it is the
encryption key when no key is configured: the embedded mode, and deployments that have not set
one yet, which ``check --deploy`` warns about). docs/security.md.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from ``SECRET_KEY`` (domain-separated SHA-256)."""
    digest = hashlib.sha256(b"model-registry/encryption-at-rest/v1\x00" + secret_key.encode())
    return base64.urlsafe_b64encode(digest.digest())


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    fernets = []
    for index, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError:
            raise ImproperlyConfigured(
                f"REGISTRY_ENCRYPTION_KEYS: key {index} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with `python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())'`)."
            ) from None
    fernets.append(Fernet(derived_key(secret_key)))
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.REGISTRY_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    """A token for ``value``; the empty string (no secret) stays empty."""
    if not value:
        return ""
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        raise ImproperlyConfigured(
            "A webhook secret cannot be decrypted with any key in REGISTRY_ENCRYPTION_KEYS "
            "(or the key derived from DJANGO_SECRET_KEY): a key that is still in use was "
            "removed, or DJANGO_SECRET_KEY changed. Put the old key back at the end of the list."
        ) from None


def rotate(token: str) -> str:
    """``token`` re-encrypted under the first key (raises like ``decrypt``)."""
    if not token:
        return ""
    decrypt(token)
    return fernet().rotate(token.encode("ascii")).decode("ascii")


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plain value."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value is None else encrypt(value)


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    fernet()  # refuses malformed keys
    if settings.REGISTRY_ENCRYPTION_KEYS:
        return []
    return [
        CheckWarning(
            "REGISTRY_ENCRYPTION_KEYS is not set: webhook secrets are encrypted with a key "
            "derived from DJANGO_SECRET_KEY, so whoever has that key can read them.",
            hint="Set REGISTRY_ENCRYPTION_KEYS to a Fernet key of its own, then run "
            "`manage.py rotate_encryption_keys` (docs/security.md).",
            id="registry.W001",
        )
    ]
