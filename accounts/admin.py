"""Admin pages of the accounts, and the read-only base classes every app's admin builds on.

Registry entities are shown read-only: their rows change only through actions that call the
services, so an admin click obeys the same permission and policy rules as the API
(docs/architecture.md, "Web UI and admin").
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import ApiToken, RegisteredModelGrant, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows listed and shown, never added, changed or deleted through a form: append-only
    records, or rows that change through actions calling the services.

    Shown to registry admins (superusers) only; with ``superusers_only = False``, Django's view
    permissions decide who sees them."""

    superusers_only = True

    def has_module_permission(self, request: HttpRequest) -> bool:
        if not self.superusers_only:
            return super().has_module_permission(request)
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self.superusers_only:
            return super().has_view_permission(request, obj)
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


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.register(User, UserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (API, ``manage.py create_token``): the secret is shown
    once and never stored, so the admin only lists and revokes."""

    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_with",
    )
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = list_display
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            services.api_token_revoke(actor=request.user, token_id=token.code)
        messages.success(request, f"Revoked {queryset.count()} token(s).")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "digest"]


@admin.register(RegisteredModelGrant)
class RegisteredModelGrantAdmin(admin.ModelAdmin):
    list_display = ["registered_model", "user", "group", "level", "created_at"]
    list_filter = ["level"]
    search_fields = ["registered_model__name", "user__username", "group__name"]
    autocomplete_fields = ["user", "group"]
