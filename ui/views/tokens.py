"""The signed-in user's API tokens: create one (its secret shown once) and revoke one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from kernel.errors import RegistryError
from ui import forms
from ui.views.base import ui_view


@require_http_methods(["GET", "POST"])
@ui_view
def tokens(request: HttpRequest) -> HttpResponse:
    created = None
    status = 200
    form = forms.TokenCreateForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                created = account_services.api_token_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                )
                form = forms.TokenCreateForm()
            except RegistryError as exc:
                messages.error(request, exc.message)
                status = exc.http_status
        else:
            messages.error(request, "Check the token form.")
            status = 400
    response = render(
        request,
        "ui/tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": account_selectors.api_token_list(actor=request.user)[:200],
            "nav": "tokens",
        },
        status=status,
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
    return response


@require_POST
@ui_view
def token_revoke(request: HttpRequest, code: str) -> HttpResponse:
    try:
        token = account_services.api_token_revoke(actor=request.user, token_id=code)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return redirect("ui:tokens")
    messages.success(request, f"Revoked token {token.name}.")
    return redirect("ui:tokens")
