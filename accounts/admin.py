"""Admin pages of the accounts, and the read-only base classes every app's admin builds on.

Registry entities are shown read-only: their rows change only through actions that call the
services, so an admin click obeys the same permission and policy rules as the API
(docs/architecture.md, "Web UI and admin").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

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


class ObjectActionsAdmin(admin.ModelAdmin):
    """A record's own page with buttons for some of the admin's actions, each run on that one
    record through the same action function as the bulk action on the list (so through the
    same services, and recorded in the audit trail the same way), and a link to the record's
    page in the web UI.

    ``object_actions``: (action name, button label) pairs, names of entries of ``actions``;
    :meth:`object_action_applies` hides the ones that cannot apply to a record; :meth:`ui_url`
    is the record's page in the web UI (None: no link).
    """

    object_actions: Sequence[tuple[str, str]] = ()
    change_form_template = "admin/object_actions_change_form.html"

    def ui_url(self, obj: Any) -> str | None:
        return None

    def object_action_applies(self, obj: Any, action: str) -> bool:
        return True

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_object_action"
        return [
            path(
                "<path:object_id>/run/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=name,
            ),
            *super().get_urls(),
        ]

    def _change_url(self, obj: Any) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )

    def object_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such record.")
        if request.method != "POST":  # a button's address opened directly: back to the page
            return HttpResponseRedirect(self._change_url(obj))
        found = self.get_actions(request).get(action)
        if action not in dict(self.object_actions) or found is None:
            raise Http404("No such action.")
        func = found[0]
        func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        return HttpResponseRedirect(self._change_url(obj))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            available = self.get_actions(request)
            context["object_actions"] = [
                (
                    name,
                    label,
                    reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action",
                        args=[obj.pk, name],
                        current_app=self.admin_site.name,
                    ),
                )
                for name, label in self.object_actions
                if name in available and self.object_action_applies(obj, name)
            ]
            context["ui_url"] = self.ui_url(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


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
    # When the grant was made is recorded, not typed.
    readonly_fields = ["created_at"]
