"""The model page's governed aliases (docs/decisions/0015-governed-aliases.md): point an alias
at a version (directly, or by request), roll it back, and decide alias requests. Each calls one
service with ``actor=request.user``; a refusal goes back to the model page with the message
and what was typed, as the other pages do (``base.refuse``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import services
from registry.models import TransitionRequestStatus
from ui import forms
from ui.views.base import ui_form
from ui.views.models import model_page, model_refusal

ALIAS_DECISIONS = {"approve", "reject", "cancel"}


def _to_aliases(name: str) -> HttpResponse:
    return redirect(reverse("ui:model-detail", kwargs={"name": name}) + "#aliases")


@ui_form(model_page)
def alias_move(request: SignedInHttpRequest, name: str) -> HttpResponse:
    form = forms.AliasMoveForm(request.POST, prefix="a")
    if not form.is_valid():
        return model_refusal(
            request, name, RegistryError.invalid("Name an alias and a version."), "aliases"
        )
    data = form.cleaned_data
    try:
        if request.POST.get("action") == "move":
            services.registered_model_alias_set(
                actor=request.user, name=name, alias=data["alias"], version=data["version"]
            )
            messages.success(request, f"@{data['alias']} now names version {data['version']}.")
        else:
            services.alias_request_create(
                actor=request.user,
                name=name,
                alias=data["alias"],
                version=data["version"],
                comment=data["comment"],
            )
            messages.success(
                request, f"Requested that @{data['alias']} name version {data['version']}."
            )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "aliases")
    return _to_aliases(name)


@ui_form(model_page)
def alias_rollback(request: SignedInHttpRequest, name: str, alias: str) -> HttpResponse:
    try:
        rollback = services.registered_model_alias_rollback(
            actor=request.user, name=name, alias=alias, comment=request.POST.get("comment", "")
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "aliases")
    if rollback.request is None:
        messages.success(request, f"Rolled @{alias} back to version {rollback.to_version}.")
    else:
        messages.success(
            request,
            f"Requested that @{alias} roll back to version {rollback.to_version}: it is "
            "protected, so the move waits for approval.",
        )
    return _to_aliases(name)


@ui_form(model_page)
def alias_request_decide(
    request: SignedInHttpRequest, name: str, alias: str, version: int, code: str, decision: str
) -> HttpResponse:
    if decision not in ALIAS_DECISIONS:
        raise RegistryError.not_found("No such decision.")
    common: dict[str, Any] = {
        "actor": request.user,
        "name": name,
        "alias": alias,
        "version": version,
        # The card's comment box is named for its request, so a refused one is kept for it.
        "comment": request.POST.get(f"ar-{code}-comment", request.POST.get("comment", "")),
        # The request this form was shown for, and no other.
        "request_id": code,
    }
    try:
        if decision == "approve":
            decision_made = services.alias_request_approve(**common)
            if decision_made.request.status == TransitionRequestStatus.APPROVED:
                messages.success(request, f"Approved: @{alias} now names version {version}.")
            else:
                messages.success(
                    request,
                    f"Approval recorded ({decision_made.note}) The request needs more approvers.",
                )
        elif decision == "reject":
            services.alias_request_reject(**common)
            messages.success(request, "Rejected the request.")
        else:
            services.alias_request_cancel(**common)
            messages.success(request, "Cancelled the request.")
    except RegistryError as exc:
        return model_refusal(request, name, exc, "aliases")
    return _to_aliases(name)
