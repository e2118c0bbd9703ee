"""Signed promotion records (docs/decisions/0016-provenance.md): for every applied stage change
and alias move that reaches a version with a digest, an in-toto Statement in a DSSE envelope
signed with the registry's key. Append-only in the database, like the trail; like the trail it
outlives the version it speaks of, so the references are plain columns."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from registry.models import (
    ALIAS_MAX_LENGTH,
    DIGEST_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PointerKind,
    RegisteredModel,
)


class PromotionRecord(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model_name = models.CharField(max_length=NAME_MAX_LENGTH)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=PointerKind.choices)
    # The stage or alias reached, and what the version or alias left ("" when nothing).
    pointer = models.CharField(max_length=ALIAS_MAX_LENGTH)
    moved_from = models.CharField(max_length=ALIAS_MAX_LENGTH, blank=True, default="")
    # The digest of the version's files the statement's subject names.
    artifact_digest = models.CharField(max_length=DIGEST_MAX_LENGTH)
    # The DSSE envelope, exactly as signed and served (JSON text), its sha256 ("sha256:<hex>")
    # and the id of the key that signed it (keys.key_id).
    envelope = models.TextField()
    envelope_digest = models.CharField(max_length=DIGEST_MAX_LENGTH)
    key_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["registered_model", "version", "id"], name="promotion_record_of"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=PointerKind.values), name="promotion_record_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version} → {self.kind} {self.pointer}"
