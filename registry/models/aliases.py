"""Governed aliases: alias policies, alias requests and their approvals, and the history of
every alias and stage (docs/decisions/0015-governed-aliases.md).

An alias policy has the terms of a stage policy that make sense for an alias, plus its own
(``protected``, who may move it directly, ``allowed_stages``); the registry-wide row for an
alias name is a floor, as for stages. A move of a protected alias goes through an
:class:`AliasRequest`, decided like a transition request. :class:`PointerMove` is the
append-only history that answers "which version did @champion (or Production) name at T".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

from registry.models import (
    ALIAS_MAX_LENGTH,
    DIGEST_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Approval,
    DecidedRequest,
    ModelVersion,
    RegisteredModel,
    TransitionRequestStatus,
)

if TYPE_CHECKING:
    from registry.models.provenance import PromotionRecord


class AliasPolicy(models.Model):
    """The rules for moving one alias: of one registered model, or, with no model, the
    registry-wide default for every model's alias of that name. No row: MLflow's behaviour."""

    registered_model = models.ForeignKey(
        RegisteredModel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alias_policies",
    )
    alias = models.CharField(max_length=ALIAS_MAX_LENGTH)
    # Set, moved or deleted only through an approved request, or directly by those named below.
    protected = models.BooleanField(default=False)
    # Who may move a protected alias directly (they still need CAN_EDIT), by username and by
    # group name. Empty: nobody; every move is a request.
    direct_users = models.JSONField(default=list, blank=True)
    direct_groups = models.JSONField(default=list, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    allow_self_approval = models.BooleanField(default=True)
    # {"validation_status": "passed"}: tags the version must carry for the alias to name it.
    required_version_tags = models.JSONField(default=dict, blank=True)
    # ["Production"]: the stages the version must be in for the alias to name it. Empty: any.
    allowed_stages = models.JSONField(default=list, blank=True)
    # How long a request stays open; None: until decided.
    request_ttl = models.DurationField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "alias policies"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "alias"],
                condition=models.Q(registered_model__isnull=False),
                name="one_alias_policy_per_model_and_alias",
            ),
            models.UniqueConstraint(
                fields=["alias"],
                condition=models.Q(registered_model__isnull=True),
                name="one_default_alias_policy_per_alias",
            ),
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1, required_approvals__lte=10),
                name="alias_policy_required_approvals_range",
            ),
        ]

    def __str__(self) -> str:
        scope = self.registered_model.name if self.registered_model else "registry default"
        return f"{scope} @{self.alias}"


class AliasRequest(DecidedRequest):
    """A request to point an alias at a version, decided by people the policy makes eligible."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="alias_requests"
    )
    alias = models.CharField(max_length=ALIAS_MAX_LENGTH)
    # The version the alias would name.
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="alias_requests"
    )
    # The version the alias named when the request was made (None: it named none).
    from_version = models.PositiveIntegerField(null=True, blank=True)
    # Made by a rollback: back to the version the alias named before its last move.
    rollback = models.BooleanField(default=False)
    # The target version's digest when the request was made; approvals record theirs too.
    artifact_digest = models.CharField(max_length=DIGEST_MAX_LENGTH, blank=True, default="")
    # Who closed it (approved with the last approval, rejected, cancelled; "" for the registry
    # itself, which expires requests and closes those a move made moot), and what they said or
    # the registry says.
    closed_by_username = models.CharField(max_length=150, blank=True, default="")
    closing_comment = models.TextField(blank=True, default="")

    class Meta(DecidedRequest.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "alias"],
                condition=models.Q(status="OPEN"),
                name="one_open_alias_request_per_version",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=TransitionRequestStatus.values),
                name="alias_request_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.alias} → {self.model_version} ({self.status})"


class AliasApproval(Approval):
    """An approval of an alias request."""

    request = models.ForeignKey(AliasRequest, on_delete=models.CASCADE, related_name="approvals")

    class Meta(Approval.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver_username"], name="one_alias_approval_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver_username} approved {self.request}"


class PointerKind(models.TextChoices):
    ALIAS = "ALIAS", "Alias"
    STAGE = "STAGE", "Stage"


class PointerCause(models.TextChoices):
    """Why a pointer moved."""

    SET = "SET", "Set directly"
    APPROVED_REQUEST = "APPROVED_REQUEST", "Approved request"
    ROLLBACK = "ROLLBACK", "Rolled back directly"
    DELETED = "DELETED", "Deleted"
    VERSION_DELETED = "VERSION_DELETED", "Deleted with its version"
    MODEL_DELETED = "MODEL_DELETED", "Deleted with its model"
    TRANSITION = "TRANSITION", "Stage transition"
    ARCHIVED = "ARCHIVED", "Archived by another version's transition"
    BASELINE = "BASELINE", "Recorded when the history began"
    # Set by an import from another registry (docs/migrating.md), not moved here.
    IMPORTED = "IMPORTED", "Imported from another registry"


class PointerMove(models.Model):
    """One move of a pointer, a name that picks versions of a model: an alias (one version at
    a time) or a stage (any number). ``from_version`` is the version it left, ``to_version``
    the one it reached; an alias set for the first time has no ``from_version``, a deleted one
    no ``to_version``; a version entering a stage has only ``to_version``, one leaving it only
    ``from_version``. Append-only: the database refuses UPDATE and DELETE. Like the activity
    trail it outlives what it describes, so the model is a plain column."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model_name = models.CharField(max_length=NAME_MAX_LENGTH)
    kind = models.CharField(max_length=8, choices=PointerKind.choices)
    pointer = models.CharField(max_length=ALIAS_MAX_LENGTH)  # the alias, or the stage
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    cause = models.CharField(max_length=24, choices=PointerCause.choices)
    # The alias request (or transition request) that made the move, if any.
    request_code = models.UUIDField(null=True, blank=True)
    # The digest of the version reached, when it has one.
    artifact_digest = models.CharField(max_length=DIGEST_MAX_LENGTH, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    # The signed record written with the move (services.history); on the instance only.
    promotion_record: PromotionRecord | None = None

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=PointerKind.values), name="pointer_move_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(cause__in=PointerCause.values),
                name="pointer_move_cause_valid",
            ),
        ]
        indexes = [
            # The history of one alias or stage of a model, oldest first; "as of T".
            models.Index(
                fields=["registered_model", "kind", "pointer", "created_at"],
                name="pointer_move_history",
            ),
        ]

    def __str__(self) -> str:
        moved = f"{self.from_version} → {self.to_version}"
        return f"{self.model_name} {self.kind} {self.pointer}: {moved}"
