"""The history of version tags (docs/decisions/0022-version-tag-history.md): every tag set,
changed or removed, with its old value, who and when, written in the transaction of the change.

Not a kind of activity: the activity vocabulary is the Databricks one, served as it is by the
Databricks and MLflow activity APIs and hash-chained (docs/decisions/0017), so a new kind there
would change what clients receive. Like the trail and the history of pointers it outlives what
it describes: the model is a plain column, the version a number, and the database refuses
UPDATE and DELETE."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from registry.models import NAME_MAX_LENGTH, TAG_KEY_MAX_LENGTH, RegisteredModel


class TagChangeCause(models.TextChoices):
    """How a tag changed."""

    DIRECT = "DIRECT", "Set or removed"
    # Given with the version when it was created.
    WITH_VERSION = "WITH_VERSION", "Given when the version was created"
    # Written by an import from another registry (docs/migrating.md).
    IMPORTED = "IMPORTED", "Imported from another registry"


class VersionTagChange(models.Model):
    """One change of one tag of a model version: ``old_value`` None when the version had no
    such tag (it was set), ``new_value`` None when it was removed; both when it changed (or was
    set again to the same value). Read by (``registered_model``, ``version``), like the trail,
    so a deleted version's history stays readable (docs/decisions/0004)."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model_name = models.CharField(max_length=NAME_MAX_LENGTH)
    version = models.PositiveIntegerField()
    key = models.CharField(max_length=TAG_KEY_MAX_LENGTH)
    # NULL is not "": "" is a tag value like any other, NULL says there was no tag.
    old_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    new_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    cause = models.CharField(
        max_length=16, choices=TagChangeCause.choices, default=TagChangeCause.DIRECT
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cause__in=TagChangeCause.values),
                name="version_tag_change_cause_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(old_value__isnull=False) | models.Q(new_value__isnull=False),
                name="version_tag_change_changes_something",
            ),
        ]
        indexes = [
            # One version's tag history, oldest first, whether or not the version still exists.
            models.Index(
                fields=["registered_model", "version", "created_at"],
                name="version_tag_change_history",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version} tag {self.key}"

    @property
    def removed(self) -> bool:
        return self.new_value is None
