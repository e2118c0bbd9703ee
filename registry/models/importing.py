"""What an import from another registry wrote (docs/migrating.md): one row per model, version
and set of aliases, with the fingerprints of the source's and of this registry's state when it
was written. A run reads them to import only what is new or changed on the source, and to
refuse to overwrite what was changed here since (a conflict). And the runs started from the
API, with their progress and report."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from registry.models import RegisteredModel
from webhooks.crypto import EncryptedTextField


class ImportedKind(models.TextChoices):
    MODEL = "MODEL", "Registered model (description, tags)"
    VERSION = "VERSION", "Model version"
    ALIASES = "ALIASES", "Aliases of a registered model"


class ImportedObject(models.Model):
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=ImportedKind.choices)
    # The version number for a VERSION, 0 for the others.
    version = models.PositiveIntegerField(default=0)
    source_url = models.TextField()
    # sha256 of the fields the import copies, as the source had them and as written here.
    source_fingerprint = models.CharField(max_length=64)
    local_fingerprint = models.CharField(max_length=64)
    imported_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["registered_model_id", "kind", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "kind", "version"], name="imported_object_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=ImportedKind.values), name="imported_object_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model_id} {self.kind} {self.version}"


class ImportRunStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"


class ImportRun(models.Model):
    """An import started from the API (docs/migrating.md, "Without shell access"), run by a
    Celery task that writes its progress here as it goes and its report at the end."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source_url = models.TextField()
    # The source's credentials, encrypted at rest like the webhooks' (docs/security.md).
    token = EncryptedTextField(blank=True, default="")
    username = models.CharField(max_length=256, blank=True, default="")
    password = EncryptedTextField(blank=True, default="")
    model_names = models.JSONField(default=list, blank=True)  # --models
    artifacts = models.CharField(max_length=16, default="copy")
    concurrency = models.PositiveSmallIntegerField(default=4)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=ImportRunStatus.choices, default=ImportRunStatus.QUEUED
    )
    # {"models_total", "models_done", "versions_total", "versions_done", "counts"}
    progress = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    requested_by_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ImportRunStatus.values),
                name="import_run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"import from {self.source_url} ({self.status})"
