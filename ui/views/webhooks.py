"""The webhooks the signed-in user may see, and one webhook's deliveries (to send one
again)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from ui.views.base import ui_view
from webhooks import selectors as webhook_selectors
from webhooks.models import WebhookFlavor
from webhooks.services import management as webhook_services

DELIVERIES_PER_PAGE = 50


@require_GET
@ui_view
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = [
        hook
        for flavor in WebhookFlavor.values
        for hook in webhook_selectors.webhook_list(actor=request.user, flavor=flavor)[:100]
    ]
    return render(request, "ui/webhook_list.html", {"webhooks": webhooks, "nav": "webhooks"})


def _webhook_context(request: HttpRequest, code: str) -> dict[str, Any]:
    webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
    deliveries = list(
        webhook_selectors.delivery_list(webhook=webhook, with_attempts=True)[:DELIVERIES_PER_PAGE]
    )
    return {"webhook": webhook, "deliveries": deliveries, "nav": "webhooks"}


@require_GET
@ui_view
def webhook_detail(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "ui/webhook_detail.html", _webhook_context(request, code))


@require_POST
@ui_view
def delivery_redeliver(request: SignedInHttpRequest, code: str, delivery_code: str) -> HttpResponse:
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        delivery = webhook_selectors.delivery_get(webhook=webhook, delivery_id=delivery_code)
        webhook_services.webhook_delivery_redeliver(actor=request.user, delivery=delivery)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return render(
            request,
            "ui/webhook_detail.html",
            _webhook_context(request, code),
            status=exc.http_status,
        )
    messages.success(request, f"Delivery {delivery.code} queued again.")
    return redirect("ui:webhook-detail", code=code)
