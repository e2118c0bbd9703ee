"""What outlives the objects it describes: the registry-level audit entries (a model deleted, an
admin action, a policy changed) and the last run of each periodic task."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.utils import timezone

from kernel import hashchain
from registry.models import NAME_MAX_LENGTH

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from registry.models import RegisteredModel


#: The fields of an audit entry its ``row_hash`` covers (kernel/hashchain.py), in their version 1
#: form: never change this list, or the chain written before stops verifying.
AUDIT_HASHED_FIELDS = (
    "action",
    "model_name",
    "model_code",
    "detail",
    "actor_username",
    "created_at",
)

# The key of the transaction-level advisory lock that orders the audit chain's writers
# (PostgreSQL; SQLite runs one writing transaction at a time anyway): "audit" in ASCII.
AUDIT_CHAIN_LOCK = 0x6175646974


class AuditEntryManager(models.Manager["AuditEntry"]):
    def record(
        self,
        *,
        action: str,
        registered_model: RegisteredModel | None,
        actor: AbstractBaseUser | AnonymousUser | None,
        detail: dict[str, Any],
        at: datetime | None = None,
    ) -> AuditEntry:
        """Write one entry: the model's name and code (for a registry-wide entry, no name and
        the nil UUID), and the name of who acted (none for the registry itself, ``actor=None``,
        or someone not signed in), at ``at`` (now by default)."""
        entry = self.model(
            action=action,
            model_name=registered_model.name if registered_model else "",
            model_code=registered_model.code if registered_model else uuid.UUID(int=0),
            detail=detail,
            actor_username=(
                actor.get_username() if actor is not None and actor.is_authenticated else ""
            ),
            created_at=at or timezone.now(),
        )
        with transaction.atomic():
            # One registry-wide chain, so one writer at a time until this transaction ends.
            # Audit entries are rare (deletions of models, admin actions, policy changes): this
            # lock is never on the path of versions, stages or aliases
            # (docs/decisions/0017-tamper-evident-trail.md).
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK])
            head = self.order_by("-id").values_list("row_hash", flat=True).first()
            hashchain.link([entry], AUDIT_HASHED_FIELDS, head or hashchain.GENESIS)
            entry.save(force_insert=True)
        return entry


class AuditEntry(models.Model):
    """Registry-level events that outlive what they describe, such as deleting a whole model.
    Append-only in the database, like the activity trail."""

    class Action(models.TextChoices):
        REGISTERED_MODEL_DELETED = "REGISTERED_MODEL_DELETED", "Registered model deleted"
        # One per object an admin action (registry/admin.py) was applied to; detail holds
        # the action, the object and the outcome. Registry-wide objects: nil model_code.
        ADMIN_ACTION = "ADMIN_ACTION", "Admin action"
        # A stage policy set or dropped, from the API, the UI or the admin; detail holds the
        # stage and the policy before and after. The registry-wide default: nil model_code.
        STAGE_POLICY_SET = "STAGE_POLICY_SET", "Stage policy set"
        STAGE_POLICY_DELETED = "STAGE_POLICY_DELETED", "Stage policy deleted"
        # A FAILED_REGISTRATION version put back to PENDING_REGISTRATION by a user; detail
        # holds the version, its source and the failure it had.
        MODEL_VERSION_REGISTRATION_RETRIED = (
            "MODEL_VERSION_REGISTRATION_RETRIED",
            "Model version registration retried",
        )
        # An alias policy set or dropped; detail holds the alias and the policy before and after.
        ALIAS_POLICY_SET = "ALIAS_POLICY_SET", "Alias policy set"
        ALIAS_POLICY_DELETED = "ALIAS_POLICY_DELETED", "Alias policy deleted"
        # A model, a version or a model's aliases written by an import from another registry
        # (docs/migrating.md); detail holds the source, what was written and how.
        IMPORTED = "IMPORTED", "Imported from another registry"
        # The end of one import run; registry-wide (nil model_code), detail holds its counts.
        IMPORT_RUN = "IMPORT_RUN", "Import run"

    action = models.CharField(max_length=40, choices=Action.choices)
    model_name = models.CharField(max_length=NAME_MAX_LENGTH)
    model_code = models.UUIDField()
    detail = models.JSONField(default=dict, blank=True)
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # The registry-wide hash chain of the audit entries (kernel/hashchain.py).
    prev_hash = models.CharField(max_length=64, default="", db_default="")
    row_hash = models.CharField(max_length=64, default="", db_default="")

    objects = AuditEntryManager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.model_name}"


class PeriodicTaskRun(models.Model):
    """When each of Celery beat's periodic tasks (the sweeps of CELERY_BEAT_SCHEDULE) last
    finished without an error, written by the worker that ran it (config/periodic.py). A sweep
    that stops running (beat down, no worker) is otherwise silent: the health detail and the
    metrics read this to say so."""

    name = models.CharField(max_length=200, unique=True)  # the schedule entry's name
    last_succeeded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_succeeded_at:%Y-%m-%d %H:%M:%S}"


# The governed aliases' tables live in their own module; importing them here registers them
# with the app and lets callers import every model of the registry from ``registry.models``.
