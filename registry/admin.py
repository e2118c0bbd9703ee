"""Admin pages of the registry. Writes go through the services, so the admin obeys the same
permission and policy rules as the API. (The full admin for every entity comes with the UI.)"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from kernel.errors import RegistryError
from registry import services
from registry.models import Activity, AuditEntry, StagePolicy


@admin.register(StagePolicy)
class StagePolicyAdmin(admin.ModelAdmin):
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

    def save_model(self, request: HttpRequest, obj: StagePolicy, form: Any, change: bool) -> None:
        try:
            saved = services.stage_policy_set(
                actor=request.user,
                name=obj.registered_model.name if obj.registered_model_id else None,
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
            actor=request.user,
            name=obj.registered_model.name if obj.registered_model_id else None,
            stage=obj.stage,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:  # "delete selected" goes through the service too
            self.delete_model(request, obj)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records: listed and shown, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(_ReadOnlyAdmin):
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
class AuditEntryAdmin(_ReadOnlyAdmin):
    list_display = ["created_at", "action", "model_name", "actor_username"]
    search_fields = ["model_name", "actor_username"]


# Every other registry entity, with actions that call the services (registry/ui/admin.py).
from registry.ui import admin as _ui_admin  # noqa: E402,F401
