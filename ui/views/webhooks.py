"""The webhooks the signed-in user may manage, with their health; one webhook's settings
(edit, test, disable) and its deliveries (to send one again); a new hook (docs/ui.md,
"Webhooks"). Every change goes through webhooks/services, with the API's rules."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from ui import forms
from ui import selectors as ui_selectors
from ui.views.base import bound_if_typed, refuse, take_typed, ui_form, ui_view
from webhooks import http
from webhooks import selectors as webhook_selectors
from webhooks.models import WebhookFlavor, WebhookStatus
from webhooks.payloads import MLFLOW_PAIRS
from webhooks.services import management as webhook_services

DELIVERIES_PER_PAGE = 50
HOOKS_PER_FLAVOR = 100
# A signing secret the registry generated for a new hook, kept for the one display of the
# hook's page after the redirect (as a new API token's), then gone.
NEW_SECRET_SESSION_KEY = "ui_new_webhook_secret"


@ui_view
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = [
        hook
        for flavor in WebhookFlavor.values
        for hook in webhook_selectors.webhook_list(actor=request.user, flavor=flavor)[
            :HOOKS_PER_FLAVOR
        ]
    ]
    health = webhook_selectors.webhook_health_many(webhooks=webhooks)
    rows = [
        {"hook": hook, "health": health[hook.pk], "label": health[hook.pk].label(hook)}
        for hook in webhooks
    ]
    return render(
        request, "ui/webhook_list.html", {"rows": rows, "webhooks": webhooks, "nav": "webhooks"}
    )


def _edit_initial(webhook: Any) -> dict[str, Any]:
    events = [sub.event_type for sub in webhook.subscriptions.all()]
    return {
        "url": webhook.url,
        "name": webhook.name,
        "events": events if webhook.flavor == WebhookFlavor.DATABRICKS else [],
        "mlflow_events": [
            ".".join(MLFLOW_PAIRS[event]) for event in events if event in MLFLOW_PAIRS
        ],
        "enable_ssl_verification": webhook.enable_ssl_verification,
        "status": webhook.status,
        "description": webhook.description,
    }


def _webhook_context(request: HttpRequest, code: str) -> dict[str, Any]:
    typed = take_typed(request)
    webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
    deliveries = list(
        webhook_selectors.delivery_list(webhook=webhook, with_attempts=True)[:DELIVERIES_PER_PAGE]
    )
    health = webhook_selectors.webhook_health_many(webhooks=[webhook])[webhook.pk]
    return {
        "webhook": webhook,
        "health": health,
        "health_label": health.label(webhook),
        "delivery_rows": ui_selectors.delivery_rows(deliveries),
        "edit_form": bound_if_typed(
            forms.WebhookEditForm, typed, prefix="e", initial=_edit_initial(webhook)
        ),
        "nav": "webhooks",
    }


@ui_view
def webhook_detail(request: HttpRequest, code: str) -> HttpResponse:
    context = _webhook_context(request, code)
    new_secret = request.session.get(NEW_SECRET_SESSION_KEY)
    if new_secret is not None and new_secret.get("code") == str(context["webhook"].code):
        del request.session[NEW_SECRET_SESSION_KEY]
        context["new_secret"] = new_secret["secret"]
    response = render(request, "ui/webhook_detail.html", context)
    if "new_secret" in context:
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
    return response


def webhook_page(code: str, **_: Any) -> str:
    return reverse("ui:webhook-detail", kwargs={"code": code})


def new_webhook_page(**_: Any) -> str:
    return reverse("ui:webhook-new")


@ui_view
def webhook_new(request: HttpRequest) -> HttpResponse:
    typed = take_typed(request)
    initial = {"model_name": request.GET.get("model", ""), "status": WebhookStatus.ACTIVE}
    form = bound_if_typed(forms.WebhookForm, typed, prefix="w", initial=initial)
    return render(request, "ui/webhook_new.html", {"form": form, "nav": "webhooks"})


def _invalid(form: Any) -> RegistryError:
    problems = "; ".join(
        f"{form.fields[name].label if name in form.fields else name}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )
    return RegistryError.invalid(f"Check the form: {problems}")


@ui_form(new_webhook_page)
def webhook_create(request: SignedInHttpRequest) -> HttpResponse:
    """A hook of the flavour chosen, through the service the API calls (so the same
    permissions: a model's hook needs CAN_MANAGE on it, a hook for all models, as every
    MLflow-style one is, a registry admin)."""
    form = forms.WebhookForm(request.POST, prefix="w")
    if not form.is_valid():
        return refuse(request, _invalid(form), page=new_webhook_page())
    data = form.cleaned_data
    mlflow = data["flavor"] == WebhookFlavor.MLFLOW
    generated = not data["secret"] and data["generate_signing_key"]
    secret = secrets.token_urlsafe(32) if generated else (data["secret"] or None)
    try:
        webhook = webhook_services.webhook_create(
            actor=request.user,
            flavor=data["flavor"],
            events=form.chosen_events(),
            url=data["url"],
            secret=secret,
            authorization=None if mlflow else (data["authorization"] or None),
            enable_ssl_verification=data["enable_ssl_verification"],
            status=data["status"],
            model_name=data["model_name"] or None,
            name=data["name"] if mlflow else None,
            description=data["description"],
        )
    except RegistryError as exc:
        return refuse(request, exc, page=new_webhook_page())
    if generated:
        request.session[NEW_SECRET_SESSION_KEY] = {"code": str(webhook.code), "secret": secret}
    messages.success(request, f"Webhook created; it sends to {http.sanitize_url(webhook.url)}.")
    return redirect("ui:webhook-detail", code=webhook.code)


@ui_form(webhook_page)
def webhook_edit(request: SignedInHttpRequest, code: str) -> HttpResponse:
    form = forms.WebhookEditForm(request.POST, prefix="e")
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        if not form.is_valid():
            raise _invalid(form)
        data = form.cleaned_data
        had = [field for field in ("secret", "authorization") if getattr(webhook, field)]
        webhook = webhook_services.webhook_update(
            actor=request.user,
            webhook=webhook,
            events=(
                data["events"]
                if webhook.flavor == WebhookFlavor.DATABRICKS
                else forms.mlflow_events(data["mlflow_events"])
            ),
            name=data["name"] if webhook.flavor == WebhookFlavor.MLFLOW else None,
            url=data["url"],
            secret="" if data["remove_secret"] else (data["secret"] or None),
            authorization=("" if data["remove_authorization"] else (data["authorization"] or None)),
            enable_ssl_verification=data["enable_ssl_verification"],
            status=data["status"],
            description=data["description"],
        )
    except RegistryError as exc:
        return refuse(request, exc, page=webhook_page(code), anchor="edit")
    dropped = [field for field in had if not getattr(webhook, field)]
    note = (
        f" Its {' and '.join(dropped)} {'were' if len(dropped) > 1 else 'was'} removed."
        if dropped
        else ""
    )
    messages.success(request, f"Webhook saved.{note}")
    return redirect("ui:webhook-detail", code=code)


@ui_form(webhook_page)
def webhook_test(request: SignedInHttpRequest, code: str) -> HttpResponse:
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        delivery, result = webhook_services.webhook_test(actor=request.user, webhook=webhook)
    except RegistryError as exc:
        return refuse(request, exc, page=webhook_page(code))
    event = delivery.event.event_type
    if result.ok:
        messages.success(request, f"Test {event} sent: the receiver answered {result.status}.")
    else:
        answer = f"answered {result.status}" if result.status is not None else "did not answer"
        detail = f" ({result.error})" if result.error else ""
        messages.error(request, f"Test {event} sent: the receiver {answer}{detail}.")
    return redirect("ui:webhook-detail", code=code)


@ui_form(webhook_page)
def webhook_status(request: SignedInHttpRequest, code: str) -> HttpResponse:
    status = request.POST.get("status", "")
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        if status not in (WebhookStatus.ACTIVE, WebhookStatus.DISABLED):
            raise RegistryError.invalid("Choose to disable or to turn on the webhook.")
        webhook_services.webhook_update(actor=request.user, webhook=webhook, status=status)
    except RegistryError as exc:
        return refuse(request, exc, page=webhook_page(code))
    messages.success(
        request,
        "Webhook disabled: nothing is sent until it is turned on again."
        if status == WebhookStatus.DISABLED
        else "Webhook turned on; its failure count starts afresh.",
    )
    return redirect("ui:webhook-detail", code=code)


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
