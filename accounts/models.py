"""Users, API tokens and the permission grants on registered models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

# What a session's copy of the user's password hash is signed with. Django ends a session whose
# copy no longer matches (the password changed). Changing the salt ends every session opened
# before the change, once: sign-in forms used to accept API tokens, and a session opened with a
# token must not outlive the token.
SESSION_AUTH_HASH_SALT = "accounts.User.session_auth_hash.password-only-sign-in"


class User(AbstractUser):
    """The registry's user. Custom from the first migration so later fields need no swap."""

    # The stubs do not declare AbstractUser.Meta, which Django defines.
    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]
        swappable = "AUTH_USER_MODEL"

    # Emails about requests that wait for this user's decision, and about the decisions on
    # theirs (docs/ui.md, "Notifications"); each user may turn them off.
    email_notifications = models.BooleanField(default=True)

    def get_session_auth_hash(self) -> str:
        return self._session_auth_hash(settings.SECRET_KEY)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_auth_hash(secret)

    def _session_auth_hash(self, secret: str | bytes) -> str:
        return salted_hmac(
            SESSION_AUTH_HASH_SALT, self.password, secret=secret, algorithm="sha256"
        ).hexdigest()


class PermissionLevel(models.TextChoices):
    """The Databricks levels on a registered model, lowest first; each includes the ones below."""

    CAN_READ = "CAN_READ", "Can read"
    CAN_EDIT = "CAN_EDIT", "Can edit"
    CAN_MANAGE_STAGING_VERSIONS = "CAN_MANAGE_STAGING_VERSIONS", "Can manage staging versions"
    CAN_MANAGE_PRODUCTION_VERSIONS = (
        "CAN_MANAGE_PRODUCTION_VERSIONS",
        "Can manage production versions",
    )
    CAN_MANAGE = "CAN_MANAGE", "Can manage"


class ApiToken(models.Model):
    """A credential for programs. Only a SHA-256 of the secret is kept; ``prefix`` tells tokens
    apart in lists. The secret itself has 256 bits of entropy, so a fast hash is safe here."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The token the creating request was signed in with (None: a password, a session or the
    # host's command). Revoking a token revokes what it created, and deleting it deletes them:
    # whoever stole a token cannot keep a way in by minting another before it is revoked.
    created_with = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="created_tokens",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class RegisteredModelGrant(models.Model):
    """A permission level on one registered model, granted to one user or one group."""

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="model_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="model_grants"
    )
    level = models.CharField(max_length=40, choices=PermissionLevel.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="grant_user_xor_group",
            ),
            models.CheckConstraint(
                condition=models.Q(level__in=PermissionLevel.values), name="grant_level_valid"
            ),
            models.UniqueConstraint(
                fields=["registered_model", "user"],
                condition=models.Q(user__isnull=False),
                name="grant_unique_user",
            ),
            models.UniqueConstraint(
                fields=["registered_model", "group"],
                condition=models.Q(group__isnull=False),
                name="grant_unique_group",
            ),
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{who}: {self.level} on {self.registered_model_id}"
