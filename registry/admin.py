"""The Django admin for every registry entity; all but the stage policies and the trails are
for registry admins (superusers) only.

Nothing here changes a registry row itself: the change forms are read-only (stage policies save
through ``stage_policy_set``), and the actions (approve, reject, cancel, transition, delete)
call the same services as the API and the web UI, so an admin click obeys the same permission
and stage-policy rules (docs/architecture.md, "Layers"). A refusal becomes an error message on
the change list. :func:`run_each` records every action in the audit trail; the webhooks admin
uses it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse

from accounts.admin import ObjectActionsAdmin, ReadOnlyAdmin, ReadOnlyInline
from accounts.models import User
from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import services
from registry.models import (
    Activity,
    AliasApproval,
    AliasPolicy,
    AliasRequest,
    AuditEntry,
    Comment,
    ModelVersion,
    ModelVersionManifest,
    ModelVersionTag,
    PointerMove,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
    StagePolicy,
    TransitionApproval,
    TransitionRequest,
    TransitionRequestStatus,
    VersionTagChange,
)


def _registered_model_of(obj: Any) -> RegisteredModel | None:
    """The registered model a row belongs to (None for registry-wide rows)."""
    if isinstance(obj, RegisteredModel):
        return obj
    for path in ("registered_model", "model_version", "webhook"):
        related = getattr(obj, path, None)
        if related is not None:
            return _registered_model_of(related)
    return None


def model_ui_url(registered_model: RegisteredModel | None, anchor: str = "") -> str | None:
    """The model's page in the web UI (routes by name: no import of the UI app)."""
    if registered_model is None:
        return None
    url = reverse("ui:model-detail", kwargs={"name": registered_model.name})
    return f"{url}#{anchor}" if anchor else url


def version_ui_url(model_version: ModelVersion, anchor: str = "") -> str:
    """The version's page in the web UI."""
    url = reverse(
        "ui:version-detail",
        kwargs={"name": model_version.registered_model.name, "version": model_version.version},
    )
    return f"{url}#{anchor}" if anchor else url


def _audit(request: HttpRequest, modeladmin: admin.ModelAdmin, obj: Any, **detail: Any) -> None:
    AuditEntry.objects.record(
        action=AuditEntry.Action.ADMIN_ACTION,
        registered_model=_registered_model_of(obj),
        actor=request.user,
        detail={
            "admin_action": request.POST.get("action", ""),
            "object_type": modeladmin.model._meta.label_lower,
            "object_id": str(getattr(obj, "code", obj.pk)),
            "object": str(obj)[:200],
            **detail,
        },
    )


def run_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    call: Callable[[Any], str],
) -> None:
    """Call the service for each selected row; report each success and each refusal.

    Each call is recorded in the audit trail (who, which action, which object): a success in
    the same transaction as the change, a refusal on its own once the change rolled back.
    """
    for obj in queryset:
        label = str(obj)
        registered_model = _registered_model_of(obj)  # read before a delete removes it
        try:
            with transaction.atomic():
                outcome = call(obj)
                _audit(request, modeladmin, _Described(obj, registered_model, label),
                       outcome=outcome)  # fmt: skip
        except RegistryError as exc:
            _audit(request, modeladmin, _Described(obj, registered_model, label),
                   outcome="refused", error=exc.message)  # fmt: skip
            modeladmin.message_user(request, f"{label}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{label}: {outcome}", messages.SUCCESS)


class _Described:
    """A row as it was before the action (a deleted row keeps its name and its model)."""

    def __init__(self, obj: Any, registered_model: RegisteredModel | None, label: str) -> None:
        self.pk = obj.pk
        self.code = getattr(obj, "code", obj.pk)
        self.registered_model = registered_model
        self.label = label

    def __str__(self) -> str:
        return self.label


# --- Registered models, tags, aliases ---------------------------------------------------------


class RegisteredModelTagInline(ReadOnlyInline):
    model = RegisteredModelTag
    fields = ("key", "value")
    readonly_fields = fields


class RegisteredModelAliasInline(ReadOnlyInline):
    model = RegisteredModelAlias
    fields = ("alias", "model_version")
    readonly_fields = fields


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["name", "created_by", "created_at", "updated_at", "last_version_number"]
    search_fields = ["name"]
    readonly_fields = [
        "code", "name", "description", "created_by", "created_at", "updated_at",
        "last_version_number",
    ]  # fmt: skip
    inlines = [RegisteredModelTagInline, RegisteredModelAliasInline]
    actions = ["delete_models", "delete_models_forced"]

    def ui_url(self, obj: RegisteredModel) -> str | None:
        return model_ui_url(obj)

    @admin.action(description="Delete the selected models (with their versions)")
    def delete_models(
        self, request: SignedInHttpRequest, queryset: QuerySet[RegisteredModel]
    ) -> None:
        def delete(registered_model: RegisteredModel) -> str:
            services.registered_model_delete(actor=request.user, name=registered_model.name)
            return "deleted."

        run_each(self, request, queryset, delete)

    @admin.action(
        description=(
            "Delete the selected models, even with versions in Production or named by "
            "protected aliases (force)"
        )
    )
    def delete_models_forced(
        self, request: HttpRequest, queryset: QuerySet[RegisteredModel]
    ) -> None:
        def delete(registered_model: RegisteredModel) -> str:
            services.registered_model_delete(
                # the admin site serves signed-in staff only
                actor=cast(User, request.user),
                name=registered_model.name,
                force=True,
            )
            return "deleted (forced)."

        run_each(self, request, queryset, delete)


@admin.register(RegisteredModelTag)
class RegisteredModelTagAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["registered_model", "key", "value"]
    search_fields = ["registered_model__name", "key"]
    readonly_fields = ["registered_model", "key", "value"]
    actions = ["delete_tags"]

    def ui_url(self, obj: RegisteredModelTag) -> str | None:
        return model_ui_url(obj.registered_model)

    @admin.action(description="Delete the selected tags")
    def delete_tags(
        self, request: SignedInHttpRequest, queryset: QuerySet[RegisteredModelTag]
    ) -> None:
        def delete(tag: RegisteredModelTag) -> str:
            services.registered_model_tag_delete(
                actor=request.user, name=tag.registered_model.name, key=tag.key
            )
            return "deleted."

        run_each(self, request, queryset.select_related("registered_model"), delete)


@admin.register(RegisteredModelAlias)
class RegisteredModelAliasAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["registered_model", "alias", "model_version"]
    search_fields = ["registered_model__name", "alias"]
    readonly_fields = ["registered_model", "alias", "model_version"]
    actions = ["delete_aliases"]

    def ui_url(self, obj: RegisteredModelAlias) -> str | None:
        return model_ui_url(obj.registered_model, "aliases")

    @admin.action(description="Delete the selected aliases")
    def delete_aliases(
        self, request: SignedInHttpRequest, queryset: QuerySet[RegisteredModelAlias]
    ) -> None:
        def delete(alias: RegisteredModelAlias) -> str:
            services.registered_model_alias_delete(
                actor=request.user, name=alias.registered_model.name, alias=alias.alias
            )
            return "deleted."

        run_each(self, request, queryset.select_related("registered_model"), delete)


# --- Versions ---------------------------------------------------------------------------------


class ModelVersionTagInline(ReadOnlyInline):
    model = ModelVersionTag
    fields = ("key", "value")
    readonly_fields = fields


def _transition_action(stage: Stage, archive: bool) -> Callable[..., None]:
    def action(
        modeladmin: admin.ModelAdmin, request: SignedInHttpRequest, queryset: QuerySet[ModelVersion]
    ) -> None:
        def move(model_version: ModelVersion) -> str:
            services.model_version_stage_transition(
                actor=request.user,
                name=model_version.registered_model.name,
                version=model_version.version,
                stage=stage,
                archive_existing_versions=archive,
                comment="Moved in the admin.",
            )
            return f"moved to {stage}."

        run_each(modeladmin, request, queryset.select_related("registered_model"), move)

    suffix = " (archive the versions there)" if archive else ""
    action.__name__ = f"transition_to_{stage.lower()}"
    return admin.action(description=f"Move the selected versions to {stage}{suffix}")(action)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["registered_model", "version", "current_stage", "status", "created_by",
                    "created_at"]  # fmt: skip
    list_filter = ["current_stage", "status"]
    search_fields = ["registered_model__name", "run_id", "model_id", "=artifact_digest"]
    list_select_related = ["registered_model", "created_by"]
    readonly_fields = [
        "code", "registered_model", "version", "current_stage", "status", "status_message",
        "source", "run_id", "run_link", "model_id", "artifact_digest", "storage_location",
        "copied_from", "description", "created_by", "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [ModelVersionTagInline]
    actions = [
        _transition_action(Stage.STAGING, archive=True),
        _transition_action(Stage.PRODUCTION, archive=True),
        _transition_action(Stage.ARCHIVED, archive=False),
        _transition_action(Stage.NONE, archive=False),
    ]
    object_actions = [
        ("transition_to_staging", "Move to Staging (archive the versions there)"),
        ("transition_to_production", "Move to Production (archive the versions there)"),
        ("transition_to_archived", "Move to Archived"),
        ("transition_to_none", "Move to None"),
    ]

    def object_action_applies(self, obj: ModelVersion, action: str) -> bool:
        return action != f"transition_to_{obj.current_stage.lower()}"

    def ui_url(self, obj: ModelVersion) -> str | None:
        return version_ui_url(obj)


@admin.register(ModelVersionTag)
class ModelVersionTagAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["model_version", "key", "value"]
    search_fields = ["model_version__registered_model__name", "key"]
    readonly_fields = ["model_version", "key", "value"]
    list_select_related = ["model_version__registered_model"]
    actions = ["delete_tags"]

    def ui_url(self, obj: ModelVersionTag) -> str | None:
        return version_ui_url(obj.model_version)

    @admin.action(description="Delete the selected tags")
    def delete_tags(
        self, request: SignedInHttpRequest, queryset: QuerySet[ModelVersionTag]
    ) -> None:
        def delete(tag: ModelVersionTag) -> str:
            services.model_version_tag_delete(
                actor=request.user,
                name=tag.model_version.registered_model.name,
                version=tag.model_version.version,
                key=tag.key,
            )
            return "deleted."

        run_each(self, request, queryset.select_related("model_version__registered_model"), delete)


@admin.register(ModelVersionManifest)
class ModelVersionManifestAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "digest", "file_count", "total_size", "created_at"]
    list_select_related = ["model_version__registered_model"]
    search_fields = ["model_version__registered_model__name", "=model_version__artifact_digest"]
    readonly_fields = ["model_version", "digest", "file_count", "total_size", "files",
                       "created_at"]  # fmt: skip

    @admin.display(description="digest", ordering="model_version__artifact_digest")
    def digest(self, manifest: ModelVersionManifest) -> str:
        return manifest.model_version.artifact_digest


# --- The approval workflow --------------------------------------------------------------------


class TransitionApprovalInline(ReadOnlyInline):
    model = TransitionApproval
    fields = ("approver_username", "comment", "created_at")
    readonly_fields = fields


def _decide(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[TransitionRequest],
    decide: Callable[[TransitionRequest, dict[str, Any]], str],
) -> None:
    def call(transition_request: TransitionRequest) -> str:
        if transition_request.status != TransitionRequestStatus.OPEN:
            raise RegistryError.invalid(
                f"the request is already {transition_request.get_status_display().lower()}."
            )
        model_version = transition_request.model_version
        return decide(
            transition_request,
            {
                "actor": request.user,
                "name": model_version.registered_model.name,
                "version": model_version.version,
                "stage": transition_request.to_stage,
                # The request the admin selected, not whichever is open under these names
                # when the service takes the lock.
                "request_id": transition_request.code,
            },
        )

    run_each(modeladmin, request, queryset.select_related("model_version__registered_model"), call)


def _approve(archive: bool) -> Callable[[TransitionRequest, dict[str, Any]], str]:
    def approve(transition_request: TransitionRequest, common: dict[str, Any]) -> str:
        services.transition_request_approve(
            **common, archive_existing_versions=archive, comment="Approved in the admin."
        )
        transition_request.refresh_from_db()
        if transition_request.status == TransitionRequestStatus.OPEN:
            count = transition_request.approvals.count()
            return f"approval recorded ({count} so far); the policy needs more approvers."
        return f"approved; the version is now in {transition_request.to_stage}."

    return approve


@admin.register(TransitionRequest)
class TransitionRequestAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["model_version", "from_stage", "to_stage", "status", "requested_by_username",
                    "created_at", "expires_at", "closed_at"]  # fmt: skip
    list_filter = ["status", "to_stage"]
    search_fields = ["model_version__registered_model__name", "requested_by_username"]
    list_select_related = ["model_version__registered_model"]
    readonly_fields = [
        "code", "model_version", "from_stage", "to_stage", "status", "requested_by_username",
        "comment", "created_at", "expires_at", "closed_at",
    ]  # fmt: skip
    exclude = ["requested_by"]
    inlines = [TransitionApprovalInline]
    actions = ["approve", "approve_and_archive", "reject", "cancel"]
    object_actions = [
        ("approve", "Approve"),
        ("approve_and_archive", "Approve, archiving the versions in the target stage"),
        ("reject", "Reject"),
        ("cancel", "Cancel"),
    ]

    def object_action_applies(self, obj: TransitionRequest, action: str) -> bool:
        return obj.status == TransitionRequestStatus.OPEN

    def ui_url(self, obj: TransitionRequest) -> str | None:
        return version_ui_url(obj.model_version)

    @admin.action(description="Approve the selected requests")
    def approve(self, request: HttpRequest, queryset: QuerySet[TransitionRequest]) -> None:
        _decide(self, request, queryset, _approve(archive=False))

    @admin.action(description="Approve, archiving the versions already in the target stage")
    def approve_and_archive(
        self, request: HttpRequest, queryset: QuerySet[TransitionRequest]
    ) -> None:
        _decide(self, request, queryset, _approve(archive=True))

    @admin.action(description="Reject the selected requests")
    def reject(self, request: HttpRequest, queryset: QuerySet[TransitionRequest]) -> None:
        def reject(transition_request: TransitionRequest, common: dict[str, Any]) -> str:
            services.transition_request_reject(**common, comment="Rejected in the admin.")
            return "rejected."

        _decide(self, request, queryset, reject)

    @admin.action(description="Cancel the selected requests")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TransitionRequest]) -> None:
        def cancel(transition_request: TransitionRequest, common: dict[str, Any]) -> str:
            services.transition_request_cancel(
                **common,
                creator=transition_request.requested_by_username,
                comment="Cancelled in the admin.",
            )
            return "cancelled."

        _decide(self, request, queryset, cancel)


@admin.register(TransitionApproval)
class TransitionApprovalAdmin(ReadOnlyAdmin):
    list_display = ["request", "approver_username", "created_at"]
    search_fields = ["approver_username", "request__model_version__registered_model__name"]
    readonly_fields = ["request", "approver_username", "comment", "created_at"]
    exclude = ["approver"]


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["model_version", "author_username", "created_at", "updated_at"]
    search_fields = ["author_username", "text", "model_version__registered_model__name"]
    list_select_related = ["model_version__registered_model"]
    readonly_fields = ["code", "model_version", "author_username", "text", "created_at",
                       "updated_at"]  # fmt: skip
    exclude = ["author"]
    actions = ["delete_comments"]

    def ui_url(self, obj: Comment) -> str | None:
        return version_ui_url(obj.model_version, "comments")

    @admin.action(description="Delete the selected comments")
    def delete_comments(self, request: SignedInHttpRequest, queryset: QuerySet[Comment]) -> None:
        def delete(comment: Comment) -> str:
            services.comment_delete(actor=request.user, id=str(comment.code))
            return "deleted."

        run_each(self, request, queryset, delete)


# --- Stage policies and the trails ------------------------------------------------------------


@admin.register(StagePolicy)
class StagePolicyAdmin(ObjectActionsAdmin):
    list_display = [
        "registered_model",
        "stage",
        "required_approvals",
        "allow_self_approval",
        "allow_direct_transition",
        "request_ttl",
    ]
    list_filter = ["stage"]
    search_fields = ["registered_model__name"]
    raw_id_fields = ["registered_model"]
    # Set by the service when the policy is saved, not typed.
    readonly_fields = ["updated_at"]

    def ui_url(self, obj: StagePolicy) -> str | None:
        return model_ui_url(obj.registered_model)

    def save_model(self, request: HttpRequest, obj: StagePolicy, form: Any, change: bool) -> None:
        try:
            saved = services.stage_policy_set(
                actor=cast(User, request.user),  # the admin site serves signed-in staff only
                name=obj.registered_model.name if obj.registered_model is not None else None,
                stage=obj.stage,
                required_approvals=obj.required_approvals,
                allow_self_approval=obj.allow_self_approval,
                allow_direct_transition=obj.allow_direct_transition,
                required_version_tags=obj.required_version_tags or {},
                gate_tag_groups=obj.gate_tag_groups or [],
                request_ttl_seconds=int(obj.request_ttl.total_seconds()) if obj.request_ttl else 0,
            )
        except RegistryError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: StagePolicy) -> None:
        services.stage_policy_delete(
            actor=cast(User, request.user),  # the admin site serves signed-in staff only
            name=obj.registered_model.name if obj.registered_model is not None else None,
            stage=obj.stage,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:  # "delete selected" goes through the service too
            self.delete_model(request, obj)


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    superusers_only = False  # staff with the view permission read the trails too
    list_display = [
        "created_at",
        "model_name",
        "version",
        "activity_type",
        "from_stage",
        "to_stage",
        "actor_username",
    ]
    list_filter = ["activity_type"]
    search_fields = ["model_name", "actor_username", "comment"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    superusers_only = False  # staff with the view permission read the trails too
    list_display = ["created_at", "action", "model_name", "actor_username"]
    search_fields = ["model_name", "actor_username"]


# --- Governed aliases (docs/decisions/0015-governed-aliases.md) -------------------------------


@admin.register(AliasPolicy)
class AliasPolicyAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["alias", "registered_model", "protected", "required_approvals",
                    "allowed_stages", "updated_at"]  # fmt: skip
    search_fields = ["alias", "registered_model__name"]
    list_select_related = ["registered_model"]

    def ui_url(self, obj: AliasPolicy) -> str | None:
        return model_ui_url(obj.registered_model, "aliases")


class AliasApprovalInline(ReadOnlyInline):
    model = AliasApproval
    fields = ("approver_username", "artifact_digest", "comment", "created_at")
    readonly_fields = fields


@admin.register(AliasRequest)
class AliasRequestAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["registered_model", "alias", "model_version", "from_version", "status",
                    "requested_by_username", "created_at", "closed_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["registered_model__name", "alias", "requested_by_username"]
    list_select_related = ["registered_model", "model_version__registered_model"]
    exclude = ["requested_by"]
    inlines = [AliasApprovalInline]
    actions = ["approve", "reject"]
    object_actions = [("approve", "Approve"), ("reject", "Reject")]

    def object_action_applies(self, obj: AliasRequest, action: str) -> bool:
        return obj.status == TransitionRequestStatus.OPEN

    def ui_url(self, obj: AliasRequest) -> str | None:
        return model_ui_url(obj.registered_model, "aliases")

    def _decide(self, request: HttpRequest, queryset: QuerySet[AliasRequest], how: str) -> None:
        def decide(alias_request: AliasRequest) -> str:
            common: dict[str, Any] = {
                "actor": request.user,
                "name": alias_request.registered_model.name,
                "alias": alias_request.alias,
                "version": alias_request.model_version.version,
                "request_id": alias_request.code,
                "comment": f"{how.capitalize()} in the admin.",
            }
            if how == "approved":
                decision = services.alias_request_approve(**common)
                return "approved." if decision.move is not None else decision.note
            services.alias_request_reject(**common)
            return "rejected."

        run_each(self, request, queryset.select_related(*self.list_select_related), decide)

    @admin.action(description="Approve the selected alias requests")
    def approve(self, request: HttpRequest, queryset: QuerySet[AliasRequest]) -> None:
        self._decide(request, queryset, "approved")

    @admin.action(description="Reject the selected alias requests")
    def reject(self, request: HttpRequest, queryset: QuerySet[AliasRequest]) -> None:
        self._decide(request, queryset, "rejected")


@admin.register(PointerMove)
class PointerMoveAdmin(ReadOnlyAdmin):
    superusers_only = False  # staff with the view permission read the trails too
    list_display = ["created_at", "model_name", "kind", "pointer", "from_version", "to_version",
                    "cause", "actor_username"]  # fmt: skip
    list_filter = ["kind", "cause"]
    search_fields = ["model_name", "pointer", "actor_username"]


@admin.register(VersionTagChange)
class VersionTagChangeAdmin(ReadOnlyAdmin):
    """The history of version tags (docs/decisions/0022-version-tag-history.md)."""

    superusers_only = False  # staff with the view permission read the trails too
    list_display = ["created_at", "model_name", "version", "key", "old_value", "new_value",
                    "cause", "actor_username"]  # fmt: skip
    list_filter = ["cause"]
    search_fields = ["model_name", "key", "actor_username"]
