"""The registry's data: registered models, their versions, tags, aliases and the activity trail.

Invariants live in database constraints (DESIGN D7): unique names, unique (model, version) and
(model, alias), stage and status values checked, version numbers never reused (a counter on the
registered model that only grows), and an activity trail that the database refuses to change.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Stage(models.TextChoices):
    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class ModelVersionStatus(models.TextChoices):
    PENDING_REGISTRATION = "PENDING_REGISTRATION", "Pending registration"
    FAILED_REGISTRATION = "FAILED_REGISTRATION", "Failed registration"
    READY = "READY", "Ready"


# Field limits, shared by the validation of input and the columns.
NAME_MAX_LENGTH = 256
TAG_KEY_MAX_LENGTH = 250
TAG_VALUE_MAX_LENGTH = 100_000  # MLflow's MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
ALIAS_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 100_000
SOURCE_MAX_LENGTH = 4096
RUN_ID_MAX_LENGTH = 256
RUN_LINK_MAX_LENGTH = 4096


class RegisteredModel(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The highest version number ever given out; only ever increases, so numbers are never
    # reused after a delete.
    last_version_number = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RegisteredModelTag(models.Model):
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="tags"
    )
    key = models.CharField(max_length=TAG_KEY_MAX_LENGTH)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "key"], name="registered_model_tag_unique_key"
            ),
        ]
        # Values can be 100,000 characters: too long for a B-tree entry, so only the key.
        indexes = [models.Index(fields=["key"], name="rm_tag_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ModelVersion(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="versions"
    )
    version = models.PositiveIntegerField()
    current_stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(blank=True, default="")
    source = models.TextField(max_length=SOURCE_MAX_LENGTH)
    run_id = models.CharField(max_length=RUN_ID_MAX_LENGTH, blank=True, default="")
    run_link = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=24, choices=ModelVersionStatus.choices, default=ModelVersionStatus.READY
    )
    status_message = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["registered_model_id", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="model_version_unique_number"
            ),
            models.CheckConstraint(
                condition=models.Q(current_stage__in=Stage.values),
                name="model_version_stage_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ModelVersionStatus.values),
                name="model_version_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="model_version_number_positive"
            ),
        ]
        indexes = [
            # get-latest-versions and latest_versions: the highest version per (model, stage).
            models.Index(
                fields=["registered_model", "current_stage", "-version"], name="mv_model_stage"
            ),
            models.Index(fields=["run_id"], name="mv_run_id"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class ModelVersionTag(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=TAG_KEY_MAX_LENGTH)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "key"], name="model_version_tag_unique_key"
            ),
        ]
        indexes = [models.Index(fields=["key"], name="mv_tag_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class RegisteredModelAlias(models.Model):
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="aliases"
    )
    alias = models.CharField(max_length=ALIAS_MAX_LENGTH)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="aliases"
    )

    class Meta:
        ordering = ["alias"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "alias"], name="registered_model_alias_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.alias


class ActivityType(models.TextChoices):
    """The Databricks activity vocabulary; the approval workflow adds the request kinds."""

    APPLIED_TRANSITION = "APPLIED_TRANSITION", "Applied transition"
    SYSTEM_TRANSITION = "SYSTEM_TRANSITION", "System transition"
    REQUESTED_TRANSITION = "REQUESTED_TRANSITION", "Requested transition"
    APPROVED_REQUEST = "APPROVED_REQUEST", "Approved request"
    REJECTED_REQUEST = "REJECTED_REQUEST", "Rejected request"
    CANCELLED_REQUEST = "CANCELLED_REQUEST", "Cancelled request"
    NEW_COMMENT = "NEW_COMMENT", "New comment"


class Activity(models.Model):
    """One entry of a model version's trail. Append-only: the database refuses UPDATE and DELETE.

    The trail outlives what it describes, so the references are plain columns (no foreign-key
    constraint, no cascade) and the names are copied as they were at the time.
    """

    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="activities",
    )
    registered_model = models.ForeignKey(
        RegisteredModel,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    model_name = models.CharField(max_length=NAME_MAX_LENGTH)
    version = models.PositiveIntegerField()
    activity_type = models.CharField(max_length=32, choices=ActivityType.choices)
    from_stage = models.CharField(max_length=16, choices=Stage.choices, blank=True, default="")
    to_stage = models.CharField(max_length=16, choices=Stage.choices, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(activity_type__in=ActivityType.values),
                name="activity_type_valid",
            ),
        ]
        indexes = [models.Index(fields=["model_version", "created_at"], name="activity_version")]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version}: {self.activity_type}"
