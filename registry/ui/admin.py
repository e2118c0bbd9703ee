"""The Django admin for every registry entity, for registry admins (superusers).

Nothing here writes a row itself: the change forms are read-only, and the actions (approve,
reject, cancel, transition, delete) call the same services as the API and the web UI, so an
admin click obeys the same permission and stage-policy rules (docs/architecture.md, "Layers"). A
refusal becomes an error message on the change list. Imported by ``registry/admin.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from kernel.errors import RegistryError
from registry import services
from registry.models import (
    AuditEntry,
    Comment,
    ModelVersion,
    ModelVersionManifest,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
    TransitionApproval,
    TransitionRequest,
    TransitionRequestStatus,
)


class RegistryAdminOnly(admin.ModelAdmin):
    """Shown to registry admins only; rows change through actions that call the services."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletions go through the services
        return actions


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _registered_model_of(obj: Any) -> RegisteredModel | None:
    """The registered model a row belongs to (None for registry-wide rows)."""
    if isinstance(obj, RegisteredModel):
        return obj
    for path in ("registered_model", "model_version", "webhook"):
        related = getattr(obj, path, None)
        if related is not None:
            return _registered_model_of(related)
    return None


def _audit(request: HttpRequest, modeladmin: admin.ModelAdmin, obj: Any, **detail: Any) -> None:
    registered_model = _registered_model_of(obj)
    AuditEntry.objects.create(
        action=AuditEntry.Action.ADMIN_ACTION,
        model_name=registered_model.name if registered_model else "",
        model_code=registered_model.code if registered_model else uuid.UUID(int=0),
        detail={
            "admin_action": request.POST.get("action", ""),
            "object_type": modeladmin.model._meta.label_lower,
            "object_id": str(getattr(obj, "code", obj.pk)),
            "object": str(obj)[:200],
            **detail,
        },
        actor_username=request.user.get_username(),
    )


def _run_each(
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


class RegisteredModelTagInline(_ReadOnlyInline):
    model = RegisteredModelTag
    fields = ["key", "value"]
    readonly_fields = fields


class RegisteredModelAliasInline(_ReadOnlyInline):
    model = RegisteredModelAlias
    fields = ["alias", "model_version"]
    readonly_fields = fields


@admin.register(RegisteredModel)
class RegisteredModelAdmin(RegistryAdminOnly):
    list_display = ["name", "created_by", "created_at", "updated_at", "last_version_number"]
    search_fields = ["name"]
    readonly_fields = [
        "code", "name", "description", "created_by", "created_at", "updated_at",
        "last_version_number",
    ]  # fmt: skip
    inlines = [RegisteredModelTagInline, RegisteredModelAliasInline]
    actions = ["delete_models"]

    @admin.action(description="Delete the selected models (with their versions)")
    def delete_models(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> None:
        def delete(registered_model: RegisteredModel) -> str:
            services.registered_model_delete(actor=request.user, name=registered_model.name)
            return "deleted."

        _run_each(self, request, queryset, delete)


@admin.register(RegisteredModelTag)
class RegisteredModelTagAdmin(RegistryAdminOnly):
    list_display = ["registered_model", "key", "value"]
    search_fields = ["registered_model__name", "key"]
    readonly_fields = ["registered_model", "key", "value"]
    actions = ["delete_tags"]

    @admin.action(description="Delete the selected tags")
    def delete_tags(self, request: HttpRequest, queryset: QuerySet[RegisteredModelTag]) -> None:
        def delete(tag: RegisteredModelTag) -> str:
            services.registered_model_tag_delete(
                actor=request.user, name=tag.registered_model.name, key=tag.key
            )
            return "deleted."

        _run_each(self, request, queryset.select_related("registered_model"), delete)


@admin.register(RegisteredModelAlias)
class RegisteredModelAliasAdmin(RegistryAdminOnly):
    list_display = ["registered_model", "alias", "model_version"]
    search_fields = ["registered_model__name", "alias"]
    readonly_fields = ["registered_model", "alias", "model_version"]
    actions = ["delete_aliases"]

    @admin.action(description="Delete the selected aliases")
    def delete_aliases(
        self, request: HttpRequest, queryset: QuerySet[RegisteredModelAlias]
    ) -> None:
        def delete(alias: RegisteredModelAlias) -> str:
            services.registered_model_alias_delete(
                actor=request.user, name=alias.registered_model.name, alias=alias.alias
            )
            return "deleted."

        _run_each(self, request, queryset.select_related("registered_model"), delete)


# --- Versions ---------------------------------------------------------------------------------


class ModelVersionTagInline(_ReadOnlyInline):
    model = ModelVersionTag
    fields = ["key", "value"]
    readonly_fields = fields


def _transition_action(stage: Stage, archive: bool) -> Callable[..., None]:
    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ModelVersion]
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

        _run_each(modeladmin, request, queryset.select_related("registered_model"), move)

    suffix = " (archive the versions there)" if archive else ""
    action.__name__ = f"transition_to_{stage.lower()}"
    return admin.action(description=f"Move the selected versions to {stage}{suffix}")(action)


@admin.register(ModelVersion)
class ModelVersionAdmin(RegistryAdminOnly):
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


@admin.register(ModelVersionTag)
class ModelVersionTagAdmin(RegistryAdminOnly):
    list_display = ["model_version", "key", "value"]
    search_fields = ["model_version__registered_model__name", "key"]
    readonly_fields = ["model_version", "key", "value"]
    list_select_related = ["model_version__registered_model"]
    actions = ["delete_tags"]

    @admin.action(description="Delete the selected tags")
    def delete_tags(self, request: HttpRequest, queryset: QuerySet[ModelVersionTag]) -> None:
        def delete(tag: ModelVersionTag) -> str:
            services.model_version_tag_delete(
                actor=request.user,
                name=tag.model_version.registered_model.name,
                version=tag.model_version.version,
                key=tag.key,
            )
            return "deleted."

        _run_each(self, request, queryset.select_related("model_version__registered_model"), delete)


@admin.register(ModelVersionManifest)
class ModelVersionManifestAdmin(RegistryAdminOnly):
    list_display = ["model_version", "digest", "file_count", "total_size", "created_at"]
    list_select_related = ["model_version__registered_model"]
    search_fields = ["model_version__registered_model__name", "=model_version__artifact_digest"]
    readonly_fields = ["model_version", "digest", "file_count", "total_size", "files",
                       "created_at"]  # fmt: skip

    @admin.display(description="digest", ordering="model_version__artifact_digest")
    def digest(self, manifest: ModelVersionManifest) -> str:
        return manifest.model_version.artifact_digest


# --- The approval workflow --------------------------------------------------------------------


class TransitionApprovalInline(_ReadOnlyInline):
    model = TransitionApproval
    fields = ["approver_username", "comment", "created_at"]
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
            },
        )

    _run_each(modeladmin, request, queryset.select_related("model_version__registered_model"), call)


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
class TransitionRequestAdmin(RegistryAdminOnly):
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
class TransitionApprovalAdmin(RegistryAdminOnly):
    list_display = ["request", "approver_username", "created_at"]
    search_fields = ["approver_username", "request__model_version__registered_model__name"]
    readonly_fields = ["request", "approver_username", "comment", "created_at"]
    exclude = ["approver"]


@admin.register(Comment)
class CommentAdmin(RegistryAdminOnly):
    list_display = ["model_version", "author_username", "created_at", "updated_at"]
    search_fields = ["author_username", "text", "model_version__registered_model__name"]
    list_select_related = ["model_version__registered_model"]
    readonly_fields = ["code", "model_version", "author_username", "text", "created_at",
                       "updated_at"]  # fmt: skip
    exclude = ["author"]
    actions = ["delete_comments"]

    @admin.action(description="Delete the selected comments")
    def delete_comments(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        def delete(comment: Comment) -> str:
            services.comment_delete(actor=request.user, id=str(comment.code))
            return "deleted."

        _run_each(self, request, queryset, delete)


# --- Webhooks (their own app has no admin module yet) -----------------------------------------


def _register_webhooks() -> None:
    from webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
    from webhooks.services import webhook_delivery_redeliver

    class WebhookAdmin(RegistryAdminOnly):
        list_display = ["code", "flavor", "name", "url", "registered_model", "status",
                        "consecutive_failures", "created_at"]  # fmt: skip
        list_filter = ["flavor", "status"]
        search_fields = ["name", "url", "registered_model__name"]
        # The secret and the authorization header are write-only: never shown.
        fields = ["code", "flavor", "name", "description", "url", "status", "registered_model",
                  "enable_ssl_verification", "payload_template", "consecutive_failures",
                  "disabled_reason", "created_at", "updated_at"]  # fmt: skip
        readonly_fields = fields

    class AttemptInline(_ReadOnlyInline):
        model = WebhookDeliveryAttempt
        fields = ["number", "outcome", "response_status", "duration_ms", "error", "started_at"]
        readonly_fields = fields

    class WebhookDeliveryAdmin(RegistryAdminOnly):
        list_display = ["code", "webhook", "event", "status", "attempt_count", "created_at",
                        "delivered_at"]  # fmt: skip
        list_filter = ["status"]
        search_fields = ["code", "webhook__url"]
        list_select_related = ["webhook", "event"]
        fields = ["code", "webhook", "event", "status", "is_test", "attempt_count",
                  "attempts_before", "next_attempt_at", "last_response_status", "last_error",
                  "body", "created_at", "delivered_at"]  # fmt: skip
        readonly_fields = fields
        inlines = [AttemptInline]
        actions = ["redeliver"]

        @admin.action(description="Redeliver the selected deliveries")
        def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
            def send_again(delivery: WebhookDelivery) -> str:
                webhook_delivery_redeliver(actor=request.user, delivery=delivery)
                return "queued again."

            _run_each(self, request, queryset.select_related("webhook__registered_model"),
                      send_again)  # fmt: skip

    for model, model_admin in [(Webhook, WebhookAdmin), (WebhookDelivery, WebhookDeliveryAdmin)]:
        if not admin.site.is_registered(model):
            admin.site.register(model, model_admin)


_register_webhooks()
