"""The registry's data: registered models, their versions, tags, aliases and the activity trail.

Invariants live in database constraints (docs/architecture.md, "Decisions"): unique names, unique
(model, version) and (model, alias), stage and status values checked, version numbers never reused
(a counter on the registered model that only grows), and an activity trail that the database refuses
to change.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.db.models.signals import post_save
from django.utils import timezone

from kernel import hashchain


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
MODEL_ID_MAX_LENGTH = 256
DIGEST_MAX_LENGTH = 71  # "sha256:" and 64 hex digits
CREATOR_NAME_MAX_LENGTH = 256

#: Tag values up to this many characters are in the (key, value) search indexes. A B-tree entry
#: must stay under about 2,700 bytes: a key (250 characters) and a value this long take at most
#: 2,024 bytes in UTF-8. Longer values are rare and found through the key index.
INDEXED_TAG_VALUE_MAX_LENGTH = 256


def indexed_tag_value() -> models.Q:
    """The condition of the partial (key, value) tag indexes. A search adds it to an equality on
    a value no longer than the limit (a value equal to it has its length), so that the database
    knows the index holds every row that can match."""
    return models.Q(LessThanOrEqual(Length("value"), INDEXED_TAG_VALUE_MAX_LENGTH))


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
    # The creator as another registry named them, when no user here has that name (an import,
    # docs/migrating.md); empty otherwise. A database default too, so inserts that do not name
    # the column (the previous release's code during a rolling upgrade) still work.
    created_by_name = models.CharField(
        max_length=CREATOR_NAME_MAX_LENGTH, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The highest version number ever given out; only ever increases, so numbers are never
    # reused after a delete.
    last_version_number = models.PositiveIntegerField(default=0)
    # False only while no ACTIVE webhook with a subscription can match the model's events (none
    # of its own, none registry-wide): read under the model's row lock, it lets a write skip
    # the subscription lookup. Kept by the writes that change hooks, under that lock
    # (webhooks/services/matching.py); True is always safe, hence the database default
    # (docs/decisions/0021-writes-in-fewer-statements.md).
    hooks_may_match = models.BooleanField(default=True, db_default=True, editable=False)

    # Set by registry.selectors on the models they return for output, and read by the
    # serializers and the web UI: plain lists (docs/decisions/0011-reads-attach-plain-lists.md).
    tag_list: list[RegisteredModelTag]
    alias_list: list[RegisteredModelAlias]  # by alias, each with its model_version
    latest_versions: list[ModelVersion]  # the highest version in each stage, each with tag_list

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A save that names no fields writes every field but ``hooks_may_match``, which only
        webhooks/services/matching.py writes: the value read with the row may be stale, and
        writing it back could hide a hook created since."""
        if not self._state.adding and kwargs.get("update_fields") is None and not args:
            deferred = self.get_deferred_fields()  # as Django's own save: the loaded fields
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key
                and field.attname not in deferred
                and field.name != "hooks_may_match"
            ]
        super().save(*args, **kwargs)


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
        indexes = [
            models.Index(fields=["key"], name="rm_tag_key"),
            # tags.<key> = '<value>': the tagged models straight from the index. Values can be
            # 100,000 characters, too long for a B-tree entry, hence the partial index.
            models.Index(
                fields=["key", "value", "registered_model"],
                name="rm_tag_key_value",
                condition=indexed_tag_value(),
            ),
        ]

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
    # MLflow 3's logged model the version was registered from (``models:/<model_id>``).
    model_id = models.CharField(max_length=MODEL_ID_MAX_LENGTH, blank=True, default="")
    # ``sha256:<hex>`` of the managed copy's manifest, set when the copy makes the version READY;
    # empty while pending and for references (docs/architecture.md, "Artifacts").
    artifact_digest = models.CharField(max_length=DIGEST_MAX_LENGTH, blank=True, default="")
    # Reference mode: where the files are (the download URI); the registry holds no copy.
    # Empty for a managed copy, which lives in the store under models/<model code>/<version>.
    storage_location = models.TextField(blank=True, default="")
    # A copy of another version of this registry (``models:/<name>/<version>`` sources): the
    # version its files come from, kept even if that model is renamed; null once it is deleted.
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # As on RegisteredModel: the creator an imported version's registry named, if no user here.
    created_by_name = models.CharField(
        max_length=CREATOR_NAME_MAX_LENGTH, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    # Set by registry.selectors on the versions they return for output, as on RegisteredModel.
    tag_list: list[ModelVersionTag]  # by id
    alias_list: list[RegisteredModelAlias]  # by alias
    # Not a column: set by the manifest selector (None for a version without a manifest).
    manifest_or_none: ModelVersionManifest | None

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
            # artifact_digest = 'sha256:…': which versions hold exactly these files.
            models.Index(
                fields=["artifact_digest"],
                name="mv_artifact_digest",
                condition=~models.Q(artifact_digest=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"

    @property
    def is_reference(self) -> bool:
        """Reference mode: the files stay at ``storage_location``; the registry holds no copy."""
        return bool(self.storage_location)


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
        indexes = [
            models.Index(fields=["key"], name="mv_tag_key"),
            # tags.<key> = '<value>': the tagged versions straight from the index (see
            # RegisteredModelTag).
            models.Index(
                fields=["key", "value", "model_version"],
                name="mv_tag_key_value",
                condition=indexed_tag_value(),
            ),
        ]

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
        verbose_name_plural = "registered model aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "alias"], name="registered_model_alias_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.alias


class ActivityType(models.TextChoices):
    """The Databricks activity vocabulary; the approval workflow adds the request kinds, and the
    registry the deletion of the version (alone or with its model), the last entry of a trail."""

    APPLIED_TRANSITION = "APPLIED_TRANSITION", "Applied transition"
    SYSTEM_TRANSITION = "SYSTEM_TRANSITION", "System transition"
    REQUESTED_TRANSITION = "REQUESTED_TRANSITION", "Requested transition"
    APPROVED_REQUEST = "APPROVED_REQUEST", "Approved request"
    REJECTED_REQUEST = "REJECTED_REQUEST", "Rejected request"
    CANCELLED_REQUEST = "CANCELLED_REQUEST", "Cancelled request"
    NEW_COMMENT = "NEW_COMMENT", "New comment"
    DELETED_MODEL_VERSION = "DELETED_MODEL_VERSION", "Deleted model version"


#: The fields of an activity its ``row_hash`` covers (kernel/hashchain.py), in their version 1
#: form: never change this list, or every chain written before stops verifying.
ACTIVITY_HASHED_FIELDS = (
    "model_version_id",
    "registered_model_id",
    "model_name",
    "version",
    "activity_type",
    "from_stage",
    "to_stage",
    "comment",
    "system_comment",
    "request_id",
    "actor_id",
    "actor_username",
    "created_at",
)


class ActivityManager(models.Manager["Activity"]):
    def append(self, rows: list[Activity], *, model_locked: bool = False) -> list[Activity]:
        """Write ``rows`` (unsaved, all of one registered model) at the end of that model's
        hash chain. Takes the model's row lock first (the writers of a model's trail hold it
        already, so this costs nothing more there): the chain of one model is written by one
        transaction at a time, and chains of different models never wait for each other
        (docs/decisions/0017-tamper-evident-trail.md). ``model_locked``: the caller took that
        lock in this transaction (``SELECT ... FOR UPDATE``), so the statement that would take
        it again is not sent (docs/decisions/0021-writes-in-fewer-statements.md)."""
        if not rows:
            return rows
        model_ids = {row.registered_model_id for row in rows}
        if len(model_ids) != 1:
            raise ValueError("one chain at a time: the rows must be of one registered model")
        (model_id,) = model_ids
        # Inside the caller's transaction when it holds the lock: no savepoint of its own (two
        # more round trips), as a failure here fails the change that writes the entries.
        with transaction.atomic(savepoint=not model_locked):
            if not model_locked:
                list(
                    RegisteredModel.objects.select_for_update()
                    .filter(pk=model_id)
                    .values_list("pk", flat=True)
                )
            head = (
                self.filter(registered_model_id=model_id)
                .order_by("-id")
                .values_list("row_hash", flat=True)
                .first()
            )
            hashchain.link(rows, ACTIVITY_HASHED_FIELDS, head or hashchain.GENESIS)
            created = self.bulk_create(rows, batch_size=1000)
            # bulk_create sends no signals; receivers of post_save (the email notifications,
            # registry/notifications.py) see each entry as if it had been created alone.
            for row in created:
                post_save.send(
                    sender=Activity, instance=row, created=True, raw=False, using=self.db
                )
            return created


class Activity(models.Model):
    """One entry of a model version's trail. Append-only: the database refuses UPDATE and DELETE.
    Each model's trail is a hash chain (``prev_hash``, ``row_hash``; :class:`ActivityManager`).

    The trail outlives what it describes, so the references are plain columns (no foreign-key
    constraint, no cascade) and the names are copied as they were at the time. A version's
    trail is read by (``registered_model``, ``version``), which still names it once it is
    deleted, since numbers are never reused.
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
    # What the registry itself says about the entry (why a version was archived, a request closed).
    system_comment = models.TextField(blank=True, default="")
    # The transition request the entry belongs to, if any.
    request = models.ForeignKey(
        "TransitionRequest",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="activities",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # The hash chain of the model's trail (kernel/hashchain.py): the previous row's row_hash,
    # and the sha256 of that and this row's ACTIVITY_HASHED_FIELDS.
    prev_hash = models.CharField(max_length=64, default="", db_default="")
    row_hash = models.CharField(max_length=64, default="", db_default="")

    objects = ActivityManager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(activity_type__in=ActivityType.values),
                name="activity_type_valid",
            ),
        ]
        indexes = [
            # A version's trail, oldest first, whether or not the version still exists.
            models.Index(
                fields=["registered_model", "version", "created_at"], name="activity_trail"
            ),
            # The deleted versions of a deleted model, by the name it had when deleted.
            models.Index(
                fields=["model_name", "version"],
                name="activity_deleted_version",
                condition=models.Q(activity_type="DELETED_MODEL_VERSION"),
            ),
            # The head of each model's chain, and the chain in order (verify_trail).
            models.Index(fields=["registered_model", "id"], name="activity_chain"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version}: {self.activity_type}"


class ModelVersionManifest(models.Model):
    """What the registry's managed copy of a version holds, written once when it became READY.

    ``files`` lists ``{"path", "size", "sha256"}`` sorted by path; the version's
    ``artifact_digest`` is ``sha256:<hex>`` of that list written as ``sha256sum`` writes it
    (``<sha256>  <path>\\n``).
    """

    model_version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="manifest"
    )
    total_size = models.PositiveBigIntegerField()
    file_count = models.PositiveIntegerField()
    files = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # The key that signed the copy (its model-signing signature sits beside the files,
    # registry.provenance.model_signature.SIGNATURE_NAME); "" when the copy is not signed.
    signature_key_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    # The copy's MLflow ``MLmodel`` file, captured when the copy was verified so that pages
    # never read the store (registry/artifacts/mlmodel.py, docs/decisions/0020): "" when the
    # copy has none; cut at 64 KiB when ``mlmodel_truncated``. ``mlmodel_captured`` is False
    # for copies made before the registry kept it.
    mlmodel_text = models.TextField(blank=True, default="", db_default="")
    mlmodel_truncated = models.BooleanField(default=False, db_default=False)
    mlmodel_captured = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return f"{self.model_version}: {self.model_version.artifact_digest}"


class TransitionRequestStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"
    CANCELLED = "CANCELLED", "Cancelled"
    EXPIRED = "EXPIRED", "Expired"
    SUPERSEDED = "SUPERSEDED", "Superseded"  # the version reached the stage another way


class DecidedRequest(models.Model):
    """What a transition request and an alias request share: who asked, when, its status and
    its expiry. Both are decided through ``registry.services.approvals``."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_username = models.CharField(max_length=150)
    comment = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16,
        choices=TransitionRequestStatus.choices,
        default=TransitionRequestStatus.OPEN,
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]


class Approval(models.Model):
    """One eligible approver's approval of a request (a policy may need several distinct ones),
    bound to the version's artifact digest when it was given: it counts only for those bytes
    (docs/decisions/0015-governed-aliases.md). Each concrete kind adds its ``request``."""

    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_username = models.CharField(max_length=150)
    comment = models.TextField(blank=True, default="")
    artifact_digest = models.CharField(max_length=DIGEST_MAX_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]


class TransitionRequest(DecidedRequest):
    """A request to move a version to a stage, decided by people the policy makes eligible."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="transition_requests"
    )
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)

    class Meta(DecidedRequest.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "to_stage"],
                condition=models.Q(status="OPEN"),
                name="one_open_request_per_version_and_stage",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=TransitionRequestStatus.values),
                name="transition_request_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(to_stage__in=Stage.values), name="transition_request_stage_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} → {self.to_stage} ({self.status})"


class TransitionApproval(Approval):
    """An approval of a transition request."""

    request = models.ForeignKey(
        TransitionRequest, on_delete=models.CASCADE, related_name="approvals"
    )

    class Meta(Approval.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver_username"], name="one_approval_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver_username} approved {self.request}"


class Comment(models.Model):
    """A comment on a model version. Its author may edit or delete it; the NEW_COMMENT entry on
    the activity trail keeps the text as first posted."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_username = models.CharField(max_length=150)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author_username} on {self.model_version}"


class StagePolicy(models.Model):
    """The rules for moving versions into one stage: of one registered model, or, with no model,
    the registry-wide default. No row at all means Databricks' behaviour (the field defaults)."""

    registered_model = models.ForeignKey(
        RegisteredModel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="stage_policies",
    )
    stage = models.CharField(max_length=16, choices=Stage.choices)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    allow_self_approval = models.BooleanField(default=True)
    allow_direct_transition = models.BooleanField(default=True)
    # {"validation_status": "passed"}: tags the version must carry, with these values.
    required_version_tags = models.JSONField(default=dict, blank=True)
    # ["validators"]: the groups whose members may set or delete those tags (the policy's gate
    # tags), by name. Empty: whoever could approve a move into the stage. Never the requester
    # by virtue of CAN_EDIT alone, or the gate would certify itself.
    gate_tag_groups = models.JSONField(default=list, blank=True)
    # How long a request stays open; None: until decided.
    request_ttl = models.DurationField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    # Not columns: a policy in force that merges a model's own with the registry-wide one
    # carries both (registry.selectors); a stored policy has neither.
    own: StagePolicy
    floor: StagePolicy

    class Meta:
        verbose_name_plural = "stage policies"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "stage"],
                condition=models.Q(registered_model__isnull=False),
                name="one_policy_per_model_and_stage",
            ),
            models.UniqueConstraint(
                fields=["stage"],
                condition=models.Q(registered_model__isnull=True),
                name="one_default_policy_per_stage",
            ),
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1, required_approvals__lte=10),
                name="policy_required_approvals_range",
            ),
            models.CheckConstraint(
                condition=models.Q(stage__in=Stage.values), name="policy_stage_valid"
            ),
        ]

    def __str__(self) -> str:
        scope = self.registered_model.name if self.registered_model else "registry default"
        return f"{scope} → {self.stage}"


from registry.models.aliases import AliasApproval as AliasApproval  # noqa: E402
from registry.models.aliases import AliasPolicy as AliasPolicy  # noqa: E402
from registry.models.aliases import AliasRequest as AliasRequest  # noqa: E402
from registry.models.aliases import PointerCause as PointerCause  # noqa: E402
from registry.models.aliases import PointerKind as PointerKind  # noqa: E402
from registry.models.aliases import PointerMove as PointerMove  # noqa: E402
from registry.models.audit import AuditEntry as AuditEntry  # noqa: E402
from registry.models.audit import AuditEntryManager as AuditEntryManager  # noqa: E402
from registry.models.audit import PeriodicTaskRun as PeriodicTaskRun  # noqa: E402
from registry.models.importing import ImportedKind as ImportedKind  # noqa: E402
from registry.models.importing import ImportedObject as ImportedObject  # noqa: E402
from registry.models.importing import ImportRun as ImportRun  # noqa: E402
from registry.models.importing import ImportRunStatus as ImportRunStatus  # noqa: E402
from registry.models.provenance import PromotionRecord as PromotionRecord  # noqa: E402
from registry.models.tag_history import TagChangeCause as TagChangeCause  # noqa: E402
from registry.models.tag_history import VersionTagChange as VersionTagChange  # noqa: E402
