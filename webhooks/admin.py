"""The admin of webhooks and their deliveries, for registry admins: read-only, a secret or an
authorization value is never shown, and a redelivery goes through the service (recorded in the
audit trail like every admin action, ``registry.admin.run_each``)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse

from accounts.admin import ObjectActionsAdmin, ReadOnlyAdmin, ReadOnlyInline
from accounts.requests import SignedInHttpRequest
from registry.admin import run_each
from webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from webhooks.services.management import webhook_delivery_redeliver


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["code", "flavor", "name", "url", "registered_model", "status",
                    "consecutive_failures", "created_at"]  # fmt: skip
    list_filter = ["flavor", "status"]
    search_fields = ["name", "url", "registered_model__name"]
    # The secret and the authorization header are write-only: never shown.
    fields = ("code", "flavor", "name", "description", "url", "status", "registered_model",
              "enable_ssl_verification", "payload_template", "consecutive_failures",
              "disabled_reason", "created_at", "updated_at")  # fmt: skip
    readonly_fields = fields

    def ui_url(self, obj: Webhook) -> str | None:
        return reverse("ui:webhook-detail", kwargs={"code": obj.code})


class WebhookDeliveryAttemptInline(ReadOnlyInline):
    model = WebhookDeliveryAttempt
    fields = ("number", "outcome", "response_status", "duration_ms", "error", "started_at")
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, ObjectActionsAdmin):
    list_display = ["code", "webhook", "event", "status", "attempt_count", "created_at",
                    "delivered_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["code", "webhook__url"]
    list_select_related = ["webhook", "event"]
    fields = ("code", "webhook", "event", "status", "is_test", "attempt_count",
              "attempts_before", "next_attempt_at", "last_response_status", "last_error",
              "body", "created_at", "delivered_at")  # fmt: skip
    readonly_fields = fields
    inlines = [WebhookDeliveryAttemptInline]
    actions = ["redeliver"]
    object_actions = [("redeliver", "Redeliver")]

    def ui_url(self, obj: WebhookDelivery) -> str | None:
        return reverse("ui:webhook-detail", kwargs={"code": obj.webhook.code})

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request: SignedInHttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        def send_again(delivery: WebhookDelivery) -> str:
            webhook_delivery_redeliver(actor=request.user, delivery=delivery)
            return "queued again."

        run_each(self, request, queryset.select_related("webhook__registered_model"), send_again)
