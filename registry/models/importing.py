"""What an import from another registry wrote (docs/migrating.md): one row per model, version
and set of aliases, with the fingerprints of the source's and of this registry's state when it
was written. A run reads them to import only what is new or changed on the source, and to
refuse to overwrite what was changed here since (a conflict)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from registry.models import RegisteredModel


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
