"""The webhooks the signed-in user may see, and one webhook's deliveries (to send one
again)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from ui.views.base import refuse, ui_form, ui_view
from webhooks import selectors as webhook_selectors
from webhooks.models import WebhookFlavor
from webhooks.services import management as webhook_services

DELIVERIES_PER_PAGE = 50


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


@ui_view
def webhook_detail(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "ui/webhook_detail.html", _webhook_context(request, code))


def webhook_page(code: str, **_: Any) -> str:
    return reverse("ui:webhook-detail", kwargs={"code": code})


@ui_form(webhook_page)
def delivery_redeliver(request: SignedInHttpRequest, code: str, delivery_code: str) -> HttpResponse:
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        delivery = webhook_selectors.delivery_get(webhook=webhook, delivery_id=delivery_code)
        webhook_services.webhook_delivery_redeliver(actor=request.user, delivery=delivery)
    except RegistryError as exc:
        return refuse(request, exc, page=webhook_page(code))
    messages.success(request, f"Delivery {delivery.code} queued again.")
    return redirect("ui:webhook-detail", code=code)
